/** What a connection token says about its holder (JWT claims, ES256, issued by auth). */
export interface TokenClaims {
  app: string;
  user: string;
  device: string;
  /** Expiry, seconds since epoch. */
  exp: number;
}

export const TOKEN_ISSUER = 'push-auth';
export const TOKEN_AUDIENCE = 'push-pusher';
export const JWKS_PATH = '/.well-known/jwks.json';

/** User and device ids end up in Redis keys and Kafka keys, so `|` and whitespace are refused. */
export const ID_PATTERN = /^[^\s|]{1,128}$/;
