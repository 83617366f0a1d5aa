import type { AppLimits } from '../../store/apps.js';
import { invalid, PushError } from '../../platform/errors.js';
import { GROUP_PATTERN, ID_PATTERN } from '../../protocol/tokens.js';

export type Target = { kind: 'users'; users: string[] } | { kind: 'group'; group: string } | { kind: 'all' };

/** A submission after validation, whichever way it arrived (HTTP or push.events). */
export interface Submission {
  to: Target;
  /** Payload as JSON text, exactly as it will reach the client. */
  payload: string;
  persistent: boolean;
  ttlSeconds: number;
  idempotencyKey?: string;
  collapseKey?: string;
  traceId?: string;
  /** Group/all only: deliveries per second across the cluster. */
  ratePerSecond?: number;
}

export const DEFAULT_TTL_SECONDS = 86_400;
export const MAX_TTL_SECONDS = 30 * 86_400;
const ALLOWED_FIELDS = new Set(['to', 'payload', 'persistent', 'ttlSeconds', 'idempotencyKey', 'collapseKey', 'traceId', 'ratePerSecond']);
export const MAX_RATE_PER_SECOND = 10_000_000;
const KEY_PATTERN = /^[\x21-\x7e]{1,256}$/;
/**
 * Deepest nesting of arrays and objects a payload may have. JSON.parse copes
 * with any depth, but JSON.stringify (here, and again in every service that
 * re-serialises the payload) recurses and throws a RangeError a few thousand
 * levels down; real payloads are a handful of levels deep.
 */
export const MAX_PAYLOAD_DEPTH = 32;

/**
 * Whether `value` nests arrays/objects deeper than `max` (a scalar is depth 0,
 * `{}` and `[]` depth 1). Iterative, so it cannot itself overflow the stack,
 * and it stops at the first container past the limit.
 */
export function nestsDeeperThan(value: unknown, max: number): boolean {
  const stack: { v: unknown; depth: number }[] = [{ v: value, depth: 0 }];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const { v, depth } = item;
    if (typeof v !== 'object' || v === null) continue;
    if (depth + 1 > max) return true;
    for (const child of Array.isArray(v) ? v : Object.values(v)) {
      if (typeof child === 'object' && child !== null) stack.push({ v: child, depth: depth + 1 });
    }
  }
  return false;
}

const fieldError = (field: string, message: string) => invalid(`${field}: ${message}`, { field });

function optionalKey(body: Record<string, unknown>, field: string): string | undefined {
  const v = body[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || !KEY_PATTERN.test(v)) throw fieldError(field, 'must be 1-256 printable ASCII characters');
  return v;
}

function readTarget(to: unknown, limits: AppLimits): Target {
  if (typeof to !== 'object' || to === null || Array.isArray(to)) {
    throw fieldError('to', 'must be one of {"users":[...]}, {"group":"name"} or {"all":true}');
  }
  const keys = Object.keys(to);
  if (keys.length !== 1) throw fieldError('to', 'must have exactly one of users, group, all');
  const t = to as Record<string, unknown>;
  if ('users' in t) {
    const users = t.users;
    if (!Array.isArray(users) || users.length === 0) throw fieldError('to.users', 'must be a non-empty array of user ids');
    if (users.length > limits.maxRecipients) {
      throw fieldError('to.users', `has ${users.length} entries; at most ${limits.maxRecipients} per request`);
    }
    users.forEach((u, i) => {
      if (typeof u !== 'string' || !ID_PATTERN.test(u)) {
        throw fieldError(
          `to.users[${i}]`,
          'must be a string of 1-128 characters without whitespace, control characters, lone surrogates or "|", not starting with "#"',
        );
      }
    });
    return { kind: 'users', users: [...new Set(users as string[])] };
  }
  if ('group' in t) {
    if (typeof t.group !== 'string' || !GROUP_PATTERN.test(t.group)) {
      throw fieldError('to.group', 'must be 1-128 characters of [A-Za-z0-9._:-]');
    }
    return { kind: 'group', group: t.group };
  }
  if ('all' in t) {
    if (t.all !== true) throw fieldError('to.all', 'must be true');
    return { kind: 'all' };
  }
  throw fieldError('to', `unknown target "${keys[0]}"; expected users, group or all`);
}

/**
 * Validates a submission against the contract. Unknown top-level fields are
 * refused (a typo such as "persistant" must not silently change semantics).
 */
export function validateSubmission(body: unknown, limits: AppLimits): Submission {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body must be a JSON object');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => !ALLOWED_FIELDS.has(k));
  if (unknown.length > 0) throw fieldError(unknown[0]!, `unknown field (allowed: ${[...ALLOWED_FIELDS].join(', ')})`);

  const to = readTarget(b.to, limits);
  if (b.payload === undefined) throw fieldError('payload', 'is required (any JSON value)');
  if (nestsDeeperThan(b.payload, MAX_PAYLOAD_DEPTH)) {
    throw new PushError('PAYLOAD_TOO_DEEP', `payload: nests arrays/objects deeper than ${MAX_PAYLOAD_DEPTH} levels`, {
      status: 400,
      details: { field: 'payload', maxDepth: MAX_PAYLOAD_DEPTH },
    });
  }
  const payload = JSON.stringify(b.payload);
  if (Buffer.byteLength(payload) > limits.maxPayloadBytes) {
    throw new PushError('PAYLOAD_TOO_LARGE', `payload is ${Buffer.byteLength(payload)} bytes; at most ${limits.maxPayloadBytes}`, {
      status: 413,
      details: { field: 'payload' },
    });
  }
  if (b.persistent !== undefined && typeof b.persistent !== 'boolean') throw fieldError('persistent', 'must be a boolean');
  let ttlSeconds = DEFAULT_TTL_SECONDS;
  if (b.ttlSeconds !== undefined) {
    if (!Number.isInteger(b.ttlSeconds) || (b.ttlSeconds as number) < 1 || (b.ttlSeconds as number) > MAX_TTL_SECONDS) {
      throw fieldError('ttlSeconds', `must be an integer from 1 to ${MAX_TTL_SECONDS}`);
    }
    ttlSeconds = b.ttlSeconds as number;
  }
  let ratePerSecond: number | undefined;
  if (b.ratePerSecond !== undefined && b.ratePerSecond !== null) {
    if (to.kind === 'users') throw fieldError('ratePerSecond', 'applies to group and all messages only');
    if (!Number.isInteger(b.ratePerSecond) || (b.ratePerSecond as number) < 1 || (b.ratePerSecond as number) > MAX_RATE_PER_SECOND) {
      throw fieldError('ratePerSecond', `must be an integer from 1 to ${MAX_RATE_PER_SECOND}`);
    }
    ratePerSecond = b.ratePerSecond as number;
  }
  return {
    ratePerSecond,
    to,
    payload,
    persistent: (b.persistent as boolean | undefined) ?? true,
    ttlSeconds,
    idempotencyKey: optionalKey(b, 'idempotencyKey'),
    collapseKey: optionalKey(b, 'collapseKey'),
    traceId: optionalKey(b, 'traceId'),
  };
}
