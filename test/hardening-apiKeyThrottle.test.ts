import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { startStack, type TestStack } from './support/stack.js';

const MAX_FAILURES = 5;

/**
 * Every unknown API key costs a store read: a flood of bad keys from one address
 * loaded the store every tenant shares. After API_KEY_AUTH_MAX_FAILURES failures
 * in the window, the address is answered 429 with Retry-After before any lookup,
 * on every route that takes an API key.
 */
describe('failed API-key authentication is throttled per address', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ pushers: 0, dispatchers: 0, env: { API_KEY_AUTH_MAX_FAILURES: String(MAX_FAILURES), API_KEY_AUTH_WINDOW_SECONDS: '60' } });
  });
  after(async () => {
    await s?.stop();
  });

  const post = (url: string, key: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(url, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body),
    });

  test(
    'the collector: bad keys get 401 up to the limit, then 429 with Retry-After for every key, the submission handler and the express routes alike',
    { timeout: 30_000 },
    async () => {
      const message = { to: { users: ['u1'] }, payload: { n: 1 } };
      for (let i = 0; i < MAX_FAILURES; i++) {
        const res = await post(`${s.collector.url}/v1/messages`, `guess-${i}`, message);
        assert.equal(res.status, 401);
        assert.equal(((await res.json()) as any).error.code, 'UNAUTHORIZED');
      }
      const limited = await post(`${s.collector.url}/v1/messages`, 'guess-more', message);
      assert.equal(limited.status, 429);
      assert.ok(Number(limited.headers.get('retry-after')) >= 1);
      const body = (await limited.json()) as any;
      assert.equal(body.error.code, 'RATE_LIMITED');
      assert.match(body.error.message, /failed API key authentications/);
      // The right key from the same address waits too: guessing is not a way to find one.
      assert.equal((await post(`${s.collector.url}/v1/messages`, s.apiKey, message)).status, 429);
      // A gzip body and the other API-key routes (express) share the count.
      assert.equal((await post(`${s.collector.url}/v1/messages`, s.apiKey, gzipSync(JSON.stringify(message)), { 'content-encoding': 'gzip' })).status, 429);
      const presence = await fetch(`${s.collector.url}/v1/users/u1/presence`, { headers: { authorization: `Bearer ${s.apiKey}` } });
      assert.equal(presence.status, 429);
    },
  );

  test('auth counts on its own (the collector has already refused this address): bad keys on /v1/tokens get 401, then 429', { timeout: 30_000 }, async () => {
    for (let i = 0; i < MAX_FAILURES; i++) assert.equal((await post(`${s.auth.url}/v1/tokens`, `guess-${i}`, { userId: 'u', deviceId: 'd' })).status, 401);
    const limited = await post(`${s.auth.url}/v1/tokens`, s.apiKey, { userId: 'u', deviceId: 'd' });
    assert.equal(limited.status, 429);
    assert.ok(Number(limited.headers.get('retry-after')) >= 1);
  });
});
