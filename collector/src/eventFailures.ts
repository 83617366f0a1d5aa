import { PushError } from '../../platform/errors.js';
import { RecordDecodeError } from '../../schemas/registry.js';

/**
 * Whether a failure on a push.events record may go away by itself: a store,
 * Kafka or Redis that is down or overloaded. Those records are retried (and
 * never skipped). Anything else (a record that cannot be decoded or
 * validated, or an error no retry can change, such as a RangeError on a
 * pathological payload) would fail the same way forever and stall its
 * partition, so it goes to the dead letters instead.
 */
export function isInfrastructureFailure(err: unknown): boolean {
  if (err instanceof PushError) return err.retriable;
  const e = err as { name?: unknown; retriable?: unknown } | null | undefined;
  const name = typeof e?.name === 'string' ? e.name : '';
  // The clients' own errors that reach here unwrapped: a connection, a timeout, a broker.
  if (name.startsWith('KafkaJS')) return e?.retriable !== false;
  return name.startsWith('Mongo') || name === 'ReplyError' || name === 'MaxRetriesPerRequestError';
}

/** The code and reason a dead letter carries for a failure that retrying cannot fix. */
export function poisonOf(err: unknown): { code: string; reason: string } {
  if (err instanceof PushError || err instanceof RecordDecodeError) return { code: err.code, reason: err.message };
  const e = err as { name?: unknown; message?: unknown } | null | undefined;
  const name = typeof e?.name === 'string' ? e.name : 'Error';
  const message = typeof e?.message === 'string' ? e.message : String(err);
  return { code: 'UNPROCESSABLE', reason: `${name}: ${message}`.slice(0, 1000) };
}
