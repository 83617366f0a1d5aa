import type { KafkaMessage } from 'kafkajs';
import { encodeRecord } from '../../schemas/registry.js';
import type { BatchPublisher } from './batchPublisher.js';

/**
 * Largest original value copied into a dead letter. A dead letter is the
 * original record plus a few fields, so a record near the broker's size limit
 * (1 MiB by default) would make a dead letter the broker refuses, and the
 * consumer could then never move past it. Bigger values are left out (null)
 * and the reason says so; the original stays on its topic until retention.
 */
export const MAX_DEAD_LETTER_VALUE_BYTES = 256 * 1024;
/** Largest original key copied (and used as the dead letter's key). */
export const MAX_DEAD_LETTER_KEY_BYTES = 4096;
/** Original headers copied: at most this many, each value cut to HEADER_CHARS. */
const MAX_HEADERS = 32;
const HEADER_CHARS = 1024;
const REASON_CHARS = 2000;

/** Sends a record a consumer cannot use to push.dlq with the reason, so the consumer can move on. */
export async function sendToDeadLetters(
  publisher: BatchPublisher,
  source: { topic: string; partition: number; message: KafkaMessage },
  errorCode: string,
  reason: string,
  consumer: string,
  dlqTopic: string,
): Promise<void> {
  const headers: Record<string, string> = {};
  let headerCount = 0;
  for (const [k, v] of Object.entries(source.message.headers ?? {})) {
    if (v === undefined || ++headerCount > MAX_HEADERS) continue;
    headers[k.slice(0, 256)] = ((Array.isArray(v) ? v[0] : v)?.toString() ?? '').slice(0, HEADER_CHARS);
  }
  const notes: string[] = [];
  let key = source.message.key ?? null;
  if (key && key.length > MAX_DEAD_LETTER_KEY_BYTES) {
    notes.push(`key of ${key.length} bytes not copied (over ${MAX_DEAD_LETTER_KEY_BYTES})`);
    key = null;
  }
  let value = source.message.value ?? null;
  if (value && value.length > MAX_DEAD_LETTER_VALUE_BYTES) {
    notes.push(
      `value of ${value.length} bytes not copied (over ${MAX_DEAD_LETTER_VALUE_BYTES}); the original stays at ${source.topic} ${source.partition}:${source.message.offset}`,
    );
    value = null;
  }
  const fullReason = notes.length > 0 ? `${reason.slice(0, REASON_CHARS)} [${notes.join('; ')}]` : reason.slice(0, REASON_CHARS);
  const rec = encodeRecord('DeadLetter', {
    sourceTopic: source.topic,
    partition: source.partition,
    offset: source.message.offset,
    key,
    value,
    headers,
    errorCode,
    reason: fullReason,
    consumer,
    failedAt: Date.now(),
  });
  await publisher.publish(dlqTopic, [{ key, value: rec.value, headers: rec.headers }]);
}
