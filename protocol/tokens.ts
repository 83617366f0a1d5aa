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
 * broadcast inbox). 1-128 UTF-16 code units of well-formed text: control
 * characters are refused, and so is a lone surrogate (`"\ud800"` in JSON),
 * which UTF-8 (Kafka keys, Avro, Redis) turns into U+FFFD: the message went to
 * another user's inbox, and its own user never got it.
 */
// eslint-disable-next-line no-control-regex -- control characters are what it refuses
export const ID_PATTERN = /^(?!#)(?=[^]{1,128}$)(?:[^\s|\x00-\x1f\x7f-\x9f\ud800-\udfff]|[\ud800-\udbff][\udc00-\udfff])+$/;

/** Group names, also used in keys. */
export const GROUP_PATTERN = /^[A-Za-z0-9._:-]{1,128}$/;

/** Inbox "user" that holds an app's persistent broadcasts. */
export const BROADCAST_INBOX = '#all';
