import { setTimeout as sleep } from 'node:timers/promises';
import type { Batch, Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { Closer } from '../../platform/lifecycle.js';
import { commitThrough } from '../../platform/kafka/kafka.js';
import type { DeadLetterSink } from '../../platform/kafka/decodeOrDeadLetter.js';
import { runConsumer } from '../../platform/kafka/runConsumer.js';
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
export async function startEventsConsumer(kafka: Kafka, deps: EventsDeps, topics: Topics, onClose: (name: string, close: Closer) => void): Promise<void> {
  const consumer = kafka.consumer({
    groupId: topics.groups.collectorEvents,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
    maxBytesPerPartition: 1024 * 1024,
  });
  const handlePart = createPartHandler(deps, eventsDeadLetters(deps, topics));
  const pauseFor = createPartitionPauser(consumer, deps);
  await runConsumer({
    consumer,
    name: 'events',
    logger: deps.logger,
    onClose,
    topic: topics.events,
    fromBeginning: true,
    leave: { name: 'events-consumer', close: () => consumer.disconnect() },
    run: {
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: 4,
      eachBatch: async (payload) => {
        const gaveUp = await handleBatch(consumer, payload, (part, handled, keepGoing) =>
          handlePartWithRetries(deps, handlePart, payload, { part, handled, keepGoing }),
        );
        // The next fetch of this partition starts after the last resolved offset, that is at the record that failed.
        if (gaveUp !== undefined) pauseFor(payload.batch.topic, payload.batch.partition, gaveUp);
      },
    },
  });
}

/** Every dead letter of push.events (undecodable, unknown app, bad signature, invalid) is counted as received from Kafka too. */
function eventsDeadLetters(deps: EventsDeps, topics: Topics): DeadLetterSink {
  return {
    publisher: deps.dlq,
    dlqTopic: topics.dlq,
    consumer: topics.groups.collectorEvents,
    count: (code) => {
      deps.metrics.deadLettered.inc({ code });
      deps.metrics.received.inc({ source: 'kafka', outcome: 'dead-lettered' });
    },
    logger: deps.logger,
    log: { message: 'record sent to dead letters', fields: ['topic', 'partition', 'offset', 'code', 'reason'] },
  };
}

/** Pauses a partition whose attempts were used up, and resumes it `pauseMs` later. */
function createPartitionPauser(consumer: Consumer, deps: EventsDeps) {
  const { options } = deps;
  /** Partitions paused after their attempts were used up, with the timer that resumes each. */
  const paused = new Map<string, NodeJS.Timeout>();
  consumer.on(consumer.events.STOP, () => {
    for (const t of paused.values()) clearTimeout(t);
    paused.clear();
  });
  return (topic: string, partition: number, err: unknown) => {
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
}

/** How a part ended: handled (up to a stop request, maybe), stopped while failing, or out of retries. */
type PartOutcome = 'handled' | 'stopped' | { gaveUp: unknown };
type PartHandler = (part: KafkaMessage[], handled: Set<string>, keepGoing: () => boolean) => Promise<PartOutcome>;

/**
 * Handles a fetched batch part by part (EVENTS_BATCH records each), then commits
 * the handled prefix. Resolves with the failure the partition's retries ran out
 * on, if they did.
 */
async function handleBatch(consumer: Consumer, { batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload, handlePart: PartHandler) {
  const keepGoing = () => isRunning() && !isStale();
  const handled = new Set<string>();
  let gaveUp: unknown;
  try {
    for (let i = 0; i < batch.messages.length; i += EVENTS_BATCH) {
      if (!keepGoing()) break;
      const part = batch.messages.slice(i, i + EVENTS_BATCH);
      const outcome = await handlePart(part, handled, keepGoing);
      if (outcome !== 'handled') {
        if (outcome !== 'stopped') gaveUp = outcome.gaveUp;
        break;
      }
      // Stop at the first record not handled (a stop request): the rest is fetched again.
      if (part.some((m) => !handled.has(m.offset))) break;
      await heartbeat();
    }
  } finally {
    await commitHandledPrefix(consumer, batch, handled, resolveOffset);
  }
  return gaveUp;
}

/**
 * Handles one part, retrying an infrastructure failure with backoff (only those
 * get here: a poison record was dead-lettered instead) on the records not
 * handled yet, `options.retries` attempts in all. Adds the offsets handled to `handled`.
 */
async function handlePartWithRetries(
  deps: EventsDeps,
  handlePart: ReturnType<typeof createPartHandler>,
  { batch, heartbeat }: EachBatchPayload,
  { part, handled, keepGoing }: { part: KafkaMessage[]; handled: Set<string>; keepGoing: () => boolean },
): Promise<PartOutcome> {
  for (let attempt = 1; ; attempt++) {
    try {
      const todo = part.filter((m) => !handled.has(m.offset));
      for (const o of await handlePart(batch.topic, batch.partition, todo, keepGoing, heartbeat)) handled.add(o);
      return 'handled';
    } catch (err) {
      for (const o of (err as { handled?: Set<string> } | null)?.handled ?? []) handled.add(o);
      if (!keepGoing()) return 'stopped';
      if (attempt >= deps.options.retries) return { gaveUp: err };
      deps.metrics.eventsRetried.inc();
      const backoffMs = Math.min(MAX_BACKOFF_MS, deps.options.retryBackoffMs * 2 ** (attempt - 1));
      deps.logger.warn(
        { topic: batch.topic, partition: batch.partition, attempt, backoffMs, err: (err as Error)?.message },
        'push.events record failed; retrying',
      );
      await sleep(backoffMs);
      await heartbeat();
    }
  }
}

/**
 * Commits the handled prefix of a batch, even when a later record failed, so a
 * retry resumes at the first unhandled record instead of resubmitting the ones
 * before it (records after it that were handled are submitted again: idempotency
 * keys make that harmless).
 */
async function commitHandledPrefix(consumer: Consumer, batch: Batch, handled: Set<string>, resolveOffset: (offset: string) => void): Promise<void> {
  let done: string | undefined;
  for (const m of batch.messages) {
    if (!handled.has(m.offset)) break;
    done = m.offset;
  }
  if (done === undefined) return;
  resolveOffset(done);
  await commitThrough(consumer, batch.topic, batch.partition, done);
}
