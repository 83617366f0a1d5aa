import type { KafkaMessage } from 'kafkajs';

/**
 * Header on a push.events record re-produced by a replay or from the dead
 * letters: where the original record was, as "<partition>:<offset>".
 */
export const ORIGIN_HEADER = 'push-origin';

/**
 * The idempotency key of a push.events record that carries none of its own:
 * its original position in the topic. Reading the record again (a replay, a
 * consumer-group reset, a crash before the commit) finds the message it
 * became, so it keeps its original id and is not delivered twice, for as
 * long as idempotency keys are remembered (24 hours).
 */
export function eventIdempotencyKey(partition: number, message: Pick<KafkaMessage, 'offset' | 'headers'>): string {
  const h = message.headers?.[ORIGIN_HEADER];
  const origin = (Array.isArray(h) ? h[0] : h)?.toString();
  return `kafka#push.events#${origin && /^\d+:\d+$/.test(origin) ? origin : `${partition}:${message.offset}`}`;
}
