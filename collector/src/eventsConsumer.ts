import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import { sendToDeadLetters } from '../../platform/kafka/deadLetter.js';
import { commitThrough } from '../../platform/kafka/kafka.js';
import type { Topics } from '../../protocol/topics.js';
import type { EventsDeps } from './prepareEvents.js';
import { createPartHandler } from './eventsPart.js';

/** Records handled at once (one submitBatch); a fetched batch is cut into parts of this size. */
const EVENTS_BATCH = 500;
/** Longest backoff between two attempts after an infrastructure failure. */
const MAX_BACKOFF_MS = 5000;

export type { EventsDeps, EventsOptions } from './prepareEvents.js';

/**
 * Consumes Avro records from push.events through the same path as HTTP.
 *
 * - A record that retrying cannot fix (undecodable, unknown app, missing or bad
 *   signature, invalid, or any error other than an infrastructure one) goes to
 *   push.dlq with its reason, and the consumer moves on.
 * - An infrastructure failure (MongoDB, Kafka or Redis down) is retried with
 *   backoff, `retries` times; then the partition is paused for `pauseMs` and
 *   read again from the first record not handled. Nothing is skipped.
 * - An app over its rate limit is waited for (the records keep their order
 *   and are never dropped), which slows the partitions its records are on.
 */
export async function startEventsConsumer(kafka: Kafka, deps: EventsDeps, topics: Topics): Promise<Consumer> {
  const { options } = deps;
  const consumer = kafka.consumer({
    groupId: topics.groups.collectorEvents,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
    maxBytesPerPartition: 1024 * 1024,
  });
  await consumer.connect();
  await consumer.subscribe({ topic: topics.events, fromBeginning: true });

  const reject = async (topic: string, partition: number, message: KafkaMessage, code: string, reason: string) => {
    await sendToDeadLetters(deps.dlq, { topic, partition, message }, code, reason, topics.groups.collectorEvents, topics.dlq);
    deps.metrics.deadLettered.inc({ code });
    deps.metrics.received.inc({ source: 'kafka', outcome: 'dead-lettered' });
    deps.logger.warn({ topic, partition, offset: message.offset, code, reason: reason.slice(0, 300) }, 'record sent to dead letters');
  };

  const handleBatch = createPartHandler(deps, reject);

  /** Partitions paused after their attempts were used up, with the timer that resumes each. */
  const paused = new Map<string, NodeJS.Timeout>();
  const pauseFor = (topic: string, partition: number, err: unknown) => {
    const k = `${topic}:${partition}`;
    if (paused.has(k)) return;
    deps.metrics.eventsPaused.inc();
    deps.logger.error(
      { topic, partition, attempts: options.retries, pauseMs: options.pauseMs, err: (err as Error)?.message },
      'push.events partition paused after repeated infrastructure failures; it is read again from the first record not handled',
    );
    consumer.pause([{ topic, partitions: [partition] }]);
    const timer = setTimeout(() => {
      paused.delete(k);
      consumer.resume([{ topic, partitions: [partition] }]);
    }, options.pauseMs);
    timer.unref();
    paused.set(k, timer);
  };
  consumer.on(consumer.events.STOP, () => {
    for (const t of paused.values()) clearTimeout(t);
    paused.clear();
  });

  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      const keepGoing = () => isRunning() && !isStale();
      const handled = new Set<string>();
      let gaveUp: unknown;
      try {
        parts: for (let i = 0; i < batch.messages.length; i += EVENTS_BATCH) {
          if (!keepGoing()) break;
          const part = batch.messages.slice(i, i + EVENTS_BATCH);
          for (let attempt = 1; ; attempt++) {
            try {
              const todo = part.filter((m) => !handled.has(m.offset));
              for (const o of await handleBatch(batch.topic, batch.partition, todo, keepGoing, heartbeat)) handled.add(o);
              break;
            } catch (err) {
              for (const o of (err as { handled?: Set<string> } | null)?.handled ?? []) handled.add(o);
              // Only infrastructure failures get here (a poison record was dead-lettered instead).
              if (!keepGoing()) break parts;
              if (attempt >= options.retries) {
                gaveUp = err;
                break parts;
              }
              deps.metrics.eventsRetried.inc();
              const backoffMs = Math.min(MAX_BACKOFF_MS, options.retryBackoffMs * 2 ** (attempt - 1));
              deps.logger.warn(
                { topic: batch.topic, partition: batch.partition, attempt, backoffMs, err: (err as Error)?.message },
                'push.events record failed; retrying',
              );
              await sleep(backoffMs);
              await heartbeat();
            }
          }
          // Stop at the first record not handled (a stop request): the rest is fetched again.
          if (part.some((m) => !handled.has(m.offset))) break;
          await heartbeat();
        }
      } finally {
        // Commit the handled prefix even when a later record failed, so a retry
        // resumes at the first unhandled record instead of resubmitting the ones before it
        // (records after it that were handled are submitted again: idempotency keys make that harmless).
        let done: string | undefined;
        for (const m of batch.messages) {
          if (!handled.has(m.offset)) break;
          done = m.offset;
        }
        if (done !== undefined) {
          resolveOffset(done);
          await commitThrough(consumer, batch.topic, batch.partition, done);
        }
      }
      // The next fetch of this partition starts after the last resolved offset, that is at the record that failed.
      if (gaveUp !== undefined) pauseFor(batch.topic, batch.partition, gaveUp);
    },
  });
  return consumer;
}
