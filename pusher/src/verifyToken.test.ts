import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { SignJWT, exportJWK, generateKeyPair } from 'jose';
import { JWKS_PATH, TOKEN_AUDIENCE, TOKEN_ISSUER } from '../../protocol/tokens.js';
import { createTokenVerifier, TokenError } from './verifyToken.js';

let server: http.Server;
let authUrl: string;
let privateKey: CryptoKey;
let keyFetches = 0;

before(async () => {
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  server = http.createServer((req, res) => {
    if (req.url !== JWKS_PATH) return void res.writeHead(404).end();
    keyFetches++;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: [jwk] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  authUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

const sign = (expSeconds: number, user = 'alice') =>
  new SignJWT({ app: 'demo', dev: 'phone', grp: ['news'] })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setSubject(user)
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime(expSeconds)
    .sign(privateKey);

const codeOf = async (p: Promise<unknown>) => {
  try {
    await p;
    return 'ok';
  } catch (err) {
    return err instanceof TokenError ? err.code : String(err);
  }
};

test('a remembered token answers with the same claims; a token that differs by one character is still checked and refused', { timeout: 10_000 }, async () => {
  const verify = createTokenVerifier(authUrl);
  const token = await sign(Math.floor(Date.now() / 1000) + 3600);
  const first = await verify(token);
  const second = await verify(token);
  assert.deepEqual(second, first);
  assert.deepEqual(
    { app: first.app, user: first.user, device: first.device, groups: first.groups },
    { app: 'demo', user: 'alice', device: 'phone', groups: ['news'] },
  );
  const last = token.at(-2) === 'A' ? 'B' : 'A';
  const tampered = `${token.slice(0, -2)}${last}${token.at(-1)}`;
  assert.equal(await codeOf(verify(tampered)), 'TOKEN_INVALID');
  assert.equal(await codeOf(verify('')), 'TOKEN_MISSING');
  assert.ok(keyFetches >= 1);
});

test('a remembered token is refused with TOKEN_EXPIRED once its exp has passed', { timeout: 10_000 }, async () => {
  const verify = createTokenVerifier(authUrl);
  const exp = Math.floor(Date.now() / 1000) + 2; // at least a second ahead, whatever the clock's fraction
  const token = await sign(exp, 'bob');
  assert.equal((await verify(token)).user, 'bob');
  await new Promise((r) => setTimeout(r, Math.max(0, exp * 1000 - Date.now()) + 20));
  assert.equal(await codeOf(verify(token)), 'TOKEN_EXPIRED');
  assert.equal(await codeOf(createTokenVerifier(authUrl, { cacheSize: 0 })(token)), 'TOKEN_EXPIRED');
});
