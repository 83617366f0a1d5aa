import { createHash } from 'node:crypto';
import { createRemoteJWKSet, jwtVerify, errors } from 'jose';
import { ID_PATTERN, JWKS_PATH, TOKEN_AUDIENCE, TOKEN_ISSUER, type TokenClaims } from '../../protocol/tokens.js';

export type TokenVerifier = (token: string) => Promise<TokenClaims>;

export class TokenError extends Error {
  constructor(
    readonly code: 'TOKEN_MISSING' | 'TOKEN_EXPIRED' | 'TOKEN_INVALID' | 'KEYS_UNAVAILABLE',
    message: string,
  ) {
    super(message);
  }
}

/** How long the auth service's key set is trusted before it is fetched again; a cached verdict lives no longer. */
const KEYS_MAX_AGE_MS = 600_000;

/**
 * Verifies connection tokens locally. The auth service's public keys are
 * fetched once and cached; a token signed with an unknown key id (rotation)
 * triggers one re-fetch, rate limited by the cooldown.
 *
 * Verdicts on valid tokens are remembered (up to `cacheSize`, least recently
 * used first out), so a reconnect storm of the same tokens costs no ES256
 * verification: an entry answers until the token's `exp` and for at most as
 * long as the key set itself is trusted, so a key withdrawn by rotation stops
 * being honoured no later than it would without the cache. Entries are keyed
 * by a SHA-256 of the whole token.
 */
export function createTokenVerifier(authUrl: string, { cacheSize = 25_000 }: { cacheSize?: number } = {}): TokenVerifier {
  const jwks = createRemoteJWKSet(new URL(JWKS_PATH, authUrl), { cooldownDuration: 1000, cacheMaxAge: KEYS_MAX_AGE_MS, timeoutDuration: 3000 });
  const verified = new Map<string, { claims: TokenClaims; until: number }>();
  const check = async (token: string): Promise<TokenClaims> => {
    if (!token) throw new TokenError('TOKEN_MISSING', 'missing token');
    try {
      const { payload } = await jwtVerify(token, jwks, { issuer: TOKEN_ISSUER, audience: TOKEN_AUDIENCE, algorithms: ['ES256'] });
      const { sub, app, dev, exp, grp } = payload as { sub?: unknown; app?: unknown; dev?: unknown; exp?: number; grp?: unknown };
      if (typeof sub !== 'string' || typeof app !== 'string' || typeof dev !== 'string' || !ID_PATTERN.test(sub) || !ID_PATTERN.test(dev)) {
        throw new TokenError('TOKEN_INVALID', 'token lacks user, app or device');
      }
      const groups = Array.isArray(grp) ? grp.filter((g): g is string => typeof g === 'string') : [];
      return { app, user: sub, device: dev, groups, exp: exp ?? 0 };
    } catch (err) {
      if (err instanceof TokenError) throw err;
      if (err instanceof errors.JWTExpired) throw new TokenError('TOKEN_EXPIRED', 'token expired');
      if (err instanceof errors.JWKSTimeout || (err as { code?: string }).code === 'ECONNREFUSED' || err instanceof TypeError) {
        throw new TokenError('KEYS_UNAVAILABLE', 'cannot fetch token keys from auth');
      }
      throw new TokenError('TOKEN_INVALID', 'invalid token');
    }
  };
  if (cacheSize <= 0) return check;
  return async (token) => {
    const key = token ? createHash('sha256').update(token).digest('base64') : '';
    const hit = key ? verified.get(key) : undefined;
    const now = Date.now();
    if (hit) {
      verified.delete(key);
      if (hit.claims.exp * 1000 <= now) throw new TokenError('TOKEN_EXPIRED', 'token expired');
      if (hit.until > now) {
        verified.set(key, hit);
        return hit.claims;
      }
    }
    const claims = await check(token);
    // Tokens without `exp` are not remembered: their verdict would have no end.
    if (claims.exp > 0) {
      if (verified.size >= cacheSize) verified.delete(verified.keys().next().value!);
      verified.set(key, { claims, until: Math.min(claims.exp * 1000, Date.now() + KEYS_MAX_AGE_MS) });
    }
    return claims;
  };
}
