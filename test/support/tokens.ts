import { SignJWT, generateKeyPair, importJWK } from 'jose';
import type { TestStack } from './stack.js';

/** A token with the claims auth would give `user` on `device`, valid for an hour, but signed with a key auth never had. */
export async function forgedToken(s: TestStack, user: string, device: string): Promise<string> {
  const { privateKey } = await generateKeyPair('ES256');
  return new SignJWT({ app: s.app, dev: device })
    .setProtectedHeader({ alg: 'ES256', kid: 'forged' })
    .setSubject(user)
    .setIssuer('push-auth')
    .setAudience('push-pusher')
    .setExpirationTime('1h')
    .sign(privateKey);
}

/** A token signed with auth's real current key, expired a minute ago. */
export async function expiredToken(s: TestStack, user: string, device: string): Promise<string> {
  const stored = await s.mongo.db(s.env.MONGO_DB).collection('signing_keys').findOne({ retiredAt: null });
  const key = await importJWK(stored!.privateJwk, 'ES256');
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ app: s.app, dev: device })
    .setProtectedHeader({ alg: 'ES256', kid: stored!._id as unknown as string })
    .setSubject(user)
    .setIssuer('push-auth')
    .setAudience('push-pusher')
    .setIssuedAt(now - 120)
    .setExpirationTime(now - 60)
    .sign(key);
}
