import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { AppStore } from '../../common/src/apps.js';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
import { sendToDeadLetters } from '../../common/src/deadLetter.js';
import { commitThrough } from '../../common/src/kafka.js';
import { PushError } from '../../common/src/errors.js';
import type { Topics } from '../../common/src/topics.js';
import { decodeRecord, RecordDecodeError } from '../../schemas/registry.js';
import type { BusinessEvent } from '../../schemas/types.js';
import { submitMessage, type SubmitDeps } from './submitMessage.js';
import { validateSubmission } from './validateMessage.js';
import { eventIdempotencyKey } from '../../common/src/eventOrigin.js';

/** Maps an Avro BusinessEvent to the same shape HTTP submissions are validated in. */
function toBody(ev: BusinessEvent): Record<string, unknown> {
  let payload: unknown;
  try {
    payload = JSON.parse(ev.payload);
  } catch {
    throw new PushError('INVALID_REQUEST', 'payload: is not valid JSON text', { status: 400 });
  }
  const to = ev.to.all ? { all: true } : ev.to.group !== null ? { group: ev.to.group } : { users: ev.to.users };
  const body: Record<string, unknown> = { to, payload, persistent: ev.persistent };
  if (ev.ttlSeconds !== null) body.ttlSeconds = ev.ttlSeconds;
  if (ev.idempotencyKey !== null) body.idempotencyKey = ev.idempotencyKey;
  if (ev.collapseKey !== null) body.collapseKey = ev.collapseKey;
  if (ev.traceId !== null) body.traceId = ev.traceId;
  return body;
}

/**
 * Consumes Avro records from push.events through the same path as HTTP.
 * Records that cannot be decoded or validated go to push.dlq and never stop
 * the consumer; a retriable failure (store or Kafka down) stops the batch
 * without committing, so the record is retried, not lost.
 */
export async function startEventsConsumer(
  kafka: Kafka,
  deps: SubmitDeps & { apps: AppStore; dlq: BatchPublisher },
  topics: Topics,
): Promise<Consumer> {
  const consumer = kafka.consumer({
    groupId: topics.groups.collectorEvents,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
    maxBytesPerPartition: 1024 * 1024,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.events, fromBeginning: true });

  const handle = async (topic: string, partition: number, message: KafkaMessage) => {
    const reject = async (code: string, reason: string) => {
      deps.metrics.deadLettered.inc({ code });
      deps.metrics.received.inc({ source: 'kafka', outcome: 'dead-lettered' });
      deps.logger.warn({ topic, partition, offset: message.offset, code, reason }, 'record sent to dead letters');
      await sendToDeadLetters(deps.dlq, { topic, partition, message }, code, reason, topics.groups.collectorEvents, topics.dlq);
    };
    let ev: BusinessEvent;
    try {
      ev = decodeRecord('BusinessEvent', message.value, message.headers);
    } catch (err) {
      if (err instanceof RecordDecodeError) return reject(err.code, err.message);
      throw err;
    }
    const app = await deps.apps.get(ev.app);
    if (!app) return reject('UNKNOWN_APP', `unknown app "${ev.app}"`);
    try {
      const sub = validateSubmission(toBody(ev), app.limits);
      sub.idempotencyKey ??= eventIdempotencyKey(partition, message);
      const result = await submitMessage(deps, app, sub);
      deps.metrics.received.inc({ source: 'kafka', outcome: result.duplicate ? 'duplicate' : result.status });
    } catch (err) {
      if (err instanceof PushError && !err.retriable) return reject(err.code, err.message);
      throw err;
    }
  };

  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      let done: string | undefined;
      try {
        for (const message of batch.messages) {
          if (!isRunning() || isStale()) break;
          await handle(batch.topic, batch.partition, message);
          resolveOffset(message.offset);
          done = message.offset;
          await heartbeat();
        }
      } finally {
        // Commit what was handled even when a later record failed, so a retry
        // resumes at the failed record instead of resubmitting the ones before it.
        if (done !== undefined) await commitThrough(consumer, batch.topic, batch.partition, done);
      }
    },
  });
  return consumer;
}
