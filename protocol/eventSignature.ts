import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Signed app identity on push.events. Kafka carries no API key, so a record
 * names its app in its value and anyone who may produce to the topic could
 * name any app. A record signed with one of its app's signing secrets proves
 * that whoever wrote it holds that secret.
 *
 * Header `push-signature: v1=<hex HMAC-SHA256>` over, in this order:
 * the ASCII text `push.events.v1\n<schema id>\n<key length in bytes>\n`,
 * then the key bytes (none for a null key), then the value bytes. The schema
 * id (the `push-schema` header) is covered because it decides how the value
 * bytes are read; the key because it decides ordering. Other headers are not
 * covered, so a replay that adds `push-origin` or `push-dlq-replay` keeps the
 * signature valid.
 */
export const SIGNATURE_HEADER = 'push-signature';
const VERSION = 'v1';
/** Shortest secret accepted, in characters (a generated one has 43). */
export const MIN_SIGNING_SECRET_LENGTH = 32;

export type SignedBytes = { schemaId: string; key: Buffer | string | null | undefined; value: Buffer };

function mac(secret: string, rec: SignedBytes): Buffer {
  const key = rec.key === null || rec.key === undefined ? Buffer.alloc(0) : Buffer.isBuffer(rec.key) ? rec.key : Buffer.from(rec.key);
  return createHmac('sha256', secret).update(`push.events.${VERSION}\n${rec.schemaId}\n${key.length}\n`).update(key).update(rec.value).digest();
}

/** The `push-signature` header value for a record. */
export function signEvent(secret: string, rec: SignedBytes): string {
  return `${VERSION}=${mac(secret, rec).toString('hex')}`;
}

/** A new random signing secret (256 bits, base64url). */
export const newSigningSecret = (): string => randomBytes(32).toString('base64url');

export type SignatureCheck = { ok: true } | { ok: false; code: 'SIGNATURE_MISSING' | 'SIGNATURE_INVALID'; reason: string };

/**
 * Checks a record's signature header against an app's secrets (any of them,
 * so a secret can be rotated: add the new one, move producers over, remove
 * the old one). Constant-time comparison.
 */
export function checkEventSignature(header: string | undefined, secrets: readonly string[], rec: SignedBytes): SignatureCheck {
  if (header === undefined || header === '') return { ok: false, code: 'SIGNATURE_MISSING', reason: `record has no ${SIGNATURE_HEADER} header` };
  const m = /^v1=([0-9a-f]{64})$/.exec(header.trim());
  if (!m) return { ok: false, code: 'SIGNATURE_INVALID', reason: `${SIGNATURE_HEADER} must be "v1=<64 hex digits>"` };
  if (secrets.length === 0) return { ok: false, code: 'SIGNATURE_INVALID', reason: 'the app has no signing secret to check the signature with' };
  const given = Buffer.from(m[1]!, 'hex');
  for (const secret of secrets) if (timingSafeEqual(given, mac(secret, rec))) return { ok: true };
  return { ok: false, code: 'SIGNATURE_INVALID', reason: `${SIGNATURE_HEADER} does not match the record for any signing secret of the app` };
}
