import { PushError } from '../../platform/errors.js';
import { SCHEMA_HEADER } from '../../schemas/registry.js';

/** How big a message may grow once it is fanned out into one ingest record per recipient. */
export interface FanoutLimits {
  /** Bytes of ingest records one message may make (recipients x record size). */
  maxFanoutBytes: number;
  /** Bytes of one record at most: the largest produce request (a bigger record can never be published). */
  maxRecordBytes: number;
}

/** What fan-out needs to know of a message: works for a submission and for a stored message. */
export interface FanoutShape {
  app: string;
  /** Recipients of a user-list message; undefined for a group or all message (one record). */
  users?: readonly string[];
  payload: string;
  traceId?: string;
  collapseKey?: string;
  group?: string;
}

/**
 * Fixed part of an ingest record besides the strings counted below: Kafka's record
 * framing, Avro lengths and the id/enum/boolean/timestamp fields, the schema header.
 * Rounded up, so the estimate stays above what the encoder writes.
 */
const FIXED_RECORD_BYTES = 160 + SCHEMA_HEADER.length + 'push-trace'.length;
/** A message without a trace id is traced by its own id (26 characters), in the record and a header. */
const DEFAULT_TRACE_BYTES = 26;

/**
 * Refuses, before a single record is built, a message whose records could never
 * be published: one record over the produce request limit, or more record bytes
 * than one message may put on the publish queue. Throws a 413 naming the limit.
 * Returns the estimated bytes of the message's records.
 */
export function checkFanout(msg: FanoutShape, limits: FanoutLimits): number {
  const payloadBytes = Buffer.byteLength(msg.payload);
  const common =
    FIXED_RECORD_BYTES +
    payloadBytes +
    2 * Buffer.byteLength(msg.app) +
    2 * (msg.traceId === undefined ? DEFAULT_TRACE_BYTES : Buffer.byteLength(msg.traceId)) +
    Buffer.byteLength(msg.collapseKey ?? '');
  if (!msg.users) {
    const one = common + 2 * Buffer.byteLength(msg.group ?? '');
    tooBigRecord(one, payloadBytes, limits);
    return one;
  }
  let total = 0;
  let largest = 0;
  for (const user of msg.users) {
    // The user id is in the key and in the record.
    const size = common + 2 * Buffer.byteLength(user);
    total += size;
    if (size > largest) largest = size;
  }
  tooBigRecord(largest, payloadBytes, limits);
  if (total > limits.maxFanoutBytes) {
    const n = msg.users.length;
    throw new PushError(
      'FANOUT_TOO_LARGE',
      `to.users: ${n} recipients x a ${payloadBytes}-byte payload make about ${total} bytes of records; at most ${limits.maxFanoutBytes} per message. Send fewer recipients per request or a smaller payload`,
      { status: 413, details: { field: 'to.users', recipients: n, payloadBytes, bytes: total, limit: limits.maxFanoutBytes } },
    );
  }
  return total;
}

function tooBigRecord(size: number, payloadBytes: number, limits: FanoutLimits): void {
  if (size <= limits.maxRecordBytes) return;
  throw new PushError(
    'PAYLOAD_TOO_LARGE',
    `payload: a ${payloadBytes}-byte payload makes a ${size}-byte record; the largest record that can be published is ${limits.maxRecordBytes} bytes`,
    { status: 413, details: { field: 'payload', payloadBytes, limit: limits.maxRecordBytes } },
  );
}
