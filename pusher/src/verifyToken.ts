import { createRemoteJWKSet, jwtVerify, errors } from 'jose';
import { ID_PATTERN, JWKS_PATH, TOKEN_AUDIENCE, TOKEN_ISSUER, type TokenClaims } from '../../common/src/tokens.js';

export type TokenVerifier = (token: string) => Promise<TokenClaims>;

export class TokenError extends Error {
  constructor(readonly code: 'TOKEN_MISSING' | 'TOKEN_EXPIRED' | 'TOKEN_INVALID' | 'KEYS_UNAVAILABLE', message: string) {
    super(message);
  }
}

/**
 * Verifies connection tokens locally. The auth service's public keys are
 * fetched once and cached; a token signed with an unknown key id (rotation)
 * triggers one re-fetch, rate limited by the cooldown.
 */
export function createTokenVerifier(authUrl: string): TokenVerifier {
  const jwks = createRemoteJWKSet(new URL(JWKS_PATH, authUrl), { cooldownDuration: 1000, cacheMaxAge: 600_000, timeoutDuration: 3000 });
  return async (token) => {
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
}
