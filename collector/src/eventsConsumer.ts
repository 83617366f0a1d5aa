import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, Kafka, KafkaMessage } from 'kafkajs';
import type { App, AppStore } from '../../common/src/apps.js';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
import { sendToDeadLetters } from '../../common/src/deadLetter.js';
import { commitThrough } from '../../common/src/kafka.js';
import { PushError } from '../../common/src/errors.js';
import type { Topics } from '../../protocol/topics.js';
import { decodeRecord, schemaIdOf } from '../../schemas/registry.js';
import type { BusinessEvent } from '../../schemas/types.js';
import { submitClaimed, submitMessage, type SubmitDeps } from './submitMessage.js';
import { validateSubmission, type Submission } from './validateMessage.js';
import { eventIdempotencyKey } from '../../common/src/eventOrigin.js';
import { checkEventSignature, SIGNATURE_HEADER } from '../../protocol/eventSignature.js';
import type { IdempotencyClaim } from '../../store/idempotency.js';
import { newId } from '../../protocol/ids.js';
import type { RateLimiter } from './rateLimiter.js';
import { isInfrastructureFailure, poisonOf } from './eventFailures.js';

/** Records handled at once (claims in one bulk insert); a fetched batch is cut into parts of this size. */
const EVENTS_BATCH = 500;
/**
 * Records submitted at the same time within a part (distinct Kafka keys). Each
 * waits for its store batch, its publish and its key's completion (~10 ms on
 * FerretDB/PostgreSQL), so this many lanes cap a partition at about 100x this
 * many records per second; their store writes share batches (store/writeBatcher.ts).
 */
const EVENTS_CONCURRENCY = 128;
/** Longest backoff between two attempts after an infrastructure failure. */
const MAX_BACKOFF_MS = 5000;

export interface EventsOptions {
  /** Dead-letter unsigned records of every app (an app with signing secrets always requires them). */
  requireSignature: boolean;
  /** Attempts at a part after an infrastructure failure before its partition is paused. */
  retries: number;
  /** First backoff between attempts; doubles, up to MAX_BACKOFF_MS. */
  retryBackoffMs: number;
  /** How long a partition stays paused once its attempts are used up. */
  pauseMs: number;
}

export type EventsDeps = SubmitDeps & { apps: AppStore; dlq: BatchPublisher; limiter: RateLimiter; options: EventsOptions };

type Submittable = { message: KafkaMessage; app: App; sub: Submission; lane: string };
type Prepared = Submittable | { message: KafkaMessage; reject: { code: string; reason: string } };

const headerText = (headers: KafkaMessage['headers'], name: string): string | undefined => {
  const h = headers?.[name];
  return (Array.isArray(h) ? h[0] : h)?.toString();
};

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

  /** Whether the record's app identity holds: signed by one of the app's secrets, or unsigned where that is allowed. */
  const signatureProblem = (app: App, message: KafkaMessage): { code: string; reason: string } | undefined => {
    const header = headerText(message.headers, SIGNATURE_HEADER);
    const secrets = app.eventSigningSecrets ?? [];
    if (header === undefined && secrets.length === 0 && !options.requireSignature) return undefined;
    const check = checkEventSignature(header, secrets, { schemaId: schemaIdOf(message.headers) ?? '', key: message.key, value: message.value! });
    return check.ok ? undefined : { code: check.code, reason: check.reason };
  };

  /**
   * Decodes, authenticates and validates a record: a submission, or the reason
   * it goes to dead letters. Throws only for an infrastructure failure.
   */
  const prepare = async (partition: number, message: KafkaMessage): Promise<Prepared> => {
    let ev: BusinessEvent;
    try {
      ev = decodeRecord('BusinessEvent', message.value, message.headers);
    } catch (err) {
      return { message, reject: poisonOf(err) };
    }
    let app: App | undefined;
    try {
      app = await deps.apps.get(ev.app);
    } catch (err) {
      throw new PushError('STORE_UNAVAILABLE', 'cannot look up the app now', { status: 503, retriable: true, cause: err });
    }
    if (!app) return { message, reject: { code: 'UNKNOWN_APP', reason: `unknown app "${ev.app.slice(0, 200)}"` } };
    const bad = signatureProblem(app, message);
    if (bad) return { message, reject: bad };
    try {
      const sub = validateSubmission(toBody(ev), app.limits);
      sub.idempotencyKey ??= eventIdempotencyKey(partition, message);
      return { message, app, sub, lane: message.key?.toString() ?? `#offset:${message.offset}` };
    } catch (err) {
      if (isInfrastructureFailure(err)) throw err;
      return { message, reject: poisonOf(err) };
    }
  };

  /**
   * Waits, record by record, until each app's rate limit (shared with HTTP
   * through Redis) lets its records through. Resolves with how many of the
   * records from the start may go on: fewer than all when the consumer is
   * asked to stop while waiting (the rest are fetched again).
   */
  const throttle = async (prepared: Prepared[], keepGoing: () => boolean, heartbeat: () => Promise<void>): Promise<number> => {
    for (let i = 0; i < prepared.length; i++) {
      const p = prepared[i]!;
      if ('reject' in p) continue;
      const cost = p.sub.to.kind === 'users' ? p.sub.to.users.length : 1;
      for (let waitMs = await deps.limiter.take(p.app, cost); waitMs > 0; waitMs = await deps.limiter.take(p.app, cost)) {
        deps.metrics.eventsThrottled.inc();
        if (!keepGoing()) return i;
        await sleep(waitMs);
        try {
          await heartbeat();
        } catch {
          return i; // a rebalance: let the batch end, the partition's next owner reads on from here
        }
        if (!keepGoing()) return i;
      }
    }
    return prepared.length;
  };

  /**
   * One part of a fetched batch at once: decode and validate every record, wait
   * for rate limits, claim all idempotency keys in one bulk insert, then submit
   * the claimed records concurrently (EVENTS_CONCURRENCY at a time), records with
   * the same Kafka key one after another so one user's events keep their order.
   * Resolves with the offsets handled; rejects with the first infrastructure
   * failure (carrying the offsets handled) after the records already started
   * have finished.
   */
  const handleBatch = async (
    topic: string,
    partition: number,
    messages: KafkaMessage[],
    keepGoing: () => boolean,
    heartbeat: () => Promise<void>,
  ): Promise<Set<string>> => {
    const done = new Set<string>();
    const all: Prepared[] = [];
    for (const m of messages) all.push(await prepare(partition, m));
    const prepared = all.slice(0, await throttle(all, keepGoing, heartbeat));

    // Bulk claim; a key seen twice in the batch is claimed by its first record only,
    // the later ones go through the single-record path (which finds it done: a duplicate).
    const firsts: Submittable[] = [];
    const seenKeys = new Set<string>();
    for (const p of prepared) {
      if ('reject' in p) continue;
      const k = `${p.app._id}|${p.sub.idempotencyKey}`;
      if (seenKeys.has(k)) continue;
      seenKeys.add(k);
      firsts.push(p);
    }
    let claims: IdempotencyClaim[];
    // A record's key is kept while its message lives, so a replay of the record finds the message.
    const keepUntilOf = (p: Submittable) => new Date(Date.now() + p.sub.ttlSeconds * 1000);
    // Each claim is made for the id its message will carry.
    const idOf = new Map<Prepared, string>(firsts.map((p) => [p, newId()]));
    try {
      claims = await deps.idempotency.claimMany(
        firsts.map((p) => ({ app: p.app._id, key: p.sub.idempotencyKey!, msgId: idOf.get(p)!, keepUntil: keepUntilOf(p) })),
      );
    } catch (err) {
      throw new PushError('STORE_UNAVAILABLE', 'cannot check idempotency keys now; nothing was accepted', { status: 503, retriable: true, cause: err });
    }
    const claimOf = new Map<Prepared, IdempotencyClaim>(firsts.map((p, i) => [p, claims[i]!]));

    const one = async (p: Prepared) => {
      if ('reject' in p) return reject(topic, partition, p.message, p.reject.code, p.reject.reason);
      const claim = claimOf.get(p);
      try {
        if (!claim) {
          const result = await submitMessage(deps, p.app, p.sub);
          deps.metrics.received.inc({ source: 'kafka', outcome: result.duplicate ? 'duplicate' : result.status });
          return;
        }
        if (claim.state === 'duplicate') {
          deps.metrics.duplicates.inc();
          deps.metrics.received.inc({ source: 'kafka', outcome: 'duplicate' });
          return;
        }
        if (claim.state === 'in-progress') {
          throw new PushError('IDEMPOTENCY_IN_PROGRESS', 'a submission with this idempotency key is still being handled; retry shortly', { status: 409, retriable: true });
        }
        // Kept while the message lives, so a replay of this record finds it (store/idempotency.ts).
        const result = await submitClaimed(deps, p.app, p.sub, idOf.get(p)!, keepUntilOf(p));
        deps.metrics.received.inc({ source: 'kafka', outcome: result.status });
      } catch (err) {
        if (isInfrastructureFailure(err)) throw err;
        const poison = poisonOf(err);
        return reject(topic, partition, p.message, poison.code, poison.reason);
      }
    };

    // Lanes by key, in first-seen order; later duplicates of a claimed key run after everything else.
    const lanes = new Map<string, Prepared[]>();
    const late: Prepared[] = [];
    for (const p of prepared) {
      if (!('reject' in p) && !claimOf.has(p)) {
        late.push(p);
        continue;
      }
      const lane = 'reject' in p ? `#offset:${p.message.offset}` : p.lane;
      let list = lanes.get(lane);
      if (!list) lanes.set(lane, (list = []));
      list.push(p);
    }
    const queue = [...lanes.values()];
    const started = new Set<Prepared>();
    let failure: unknown;
    /** Handles one record; false (and the first failure kept) when it failed. */
    const attempt = async (p: Prepared): Promise<boolean> => {
      started.add(p);
      try {
        await one(p);
        done.add(p.message.offset);
        return true;
      } catch (err) {
        failure ??= err;
        return false;
      }
    };
    const worker = async () => {
      for (let lane = queue.shift(); lane; lane = queue.shift()) {
        for (const p of lane) {
          if (failure !== undefined || !keepGoing() || !(await attempt(p))) return;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(EVENTS_CONCURRENCY, queue.length) }, worker));
    for (const p of late) {
      if (failure !== undefined || !keepGoing()) break;
      await attempt(p);
    }
    // Claims of records never started are given back, so the retry (or the next
    // owner of the partition) can claim them at once instead of waiting them out.
    const unstarted = firsts.filter((p) => !started.has(p) && claimOf.get(p)?.state === 'claimed');
    await Promise.all(unstarted.map((p) => deps.idempotency.release(p.app._id, p.sub.idempotencyKey!, idOf.get(p)!).catch(() => undefined)));
    if (failure !== undefined) throw Object.assign(failure as object, { handled: done });
    return done;
  };

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
              deps.logger.warn({ topic: batch.topic, partition: batch.partition, attempt, backoffMs, err: (err as Error)?.message }, 'push.events record failed; retrying');
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
