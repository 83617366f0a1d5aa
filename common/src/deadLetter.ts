import type { KafkaMessage } from 'kafkajs';
import { encodeRecord } from '../../schemas/registry.js';
import type { BatchPublisher } from './batchPublisher.js';

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
  for (const [k, v] of Object.entries(source.message.headers ?? {})) {
    if (v !== undefined) headers[k] = (Array.isArray(v) ? v[0] : v)?.toString() ?? '';
  }
  const rec = encodeRecord('DeadLetter', {
    sourceTopic: source.topic,
    partition: source.partition,
    offset: source.message.offset,
    key: source.message.key ?? null,
    value: source.message.value ?? null,
    headers,
    errorCode,
    reason,
    consumer,
    failedAt: Date.now(),
  });
  await publisher.publish(dlqTopic, [{ key: source.message.key ?? null, value: rec.value, headers: rec.headers }]);
}
