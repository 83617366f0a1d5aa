/** What a connection token says about its holder (JWT claims, ES256, issued by auth). */
export interface TokenClaims {
  app: string;
  user: string;
  device: string;
  /** Groups this token may join (`*` suffix = prefix match); ignored when the app has open groups. */
  groups: string[];
  /** Expiry, seconds since epoch. */
  exp: number;
}

export const TOKEN_ISSUER = 'push-auth';
export const TOKEN_AUDIENCE = 'push-pusher';
export const JWKS_PATH = '/.well-known/jwks.json';

/**
 * User and device ids end up in Redis keys and Kafka keys, so `|` and
 * whitespace are refused; a leading `#` is reserved (`#all` is the app-wide
 * broadcast inbox).
 */
export const ID_PATTERN = /^[^\s|#][^\s|]{0,127}$/;

/** Group names, also used in keys. */
export const GROUP_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Inbox "user" that holds an app's persistent broadcasts. */
export const BROADCAST_INBOX = '#all';
