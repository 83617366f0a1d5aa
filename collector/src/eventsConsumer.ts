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
import { validateSubmission, type Submission } from './validateMessage.js';
import { eventIdempotencyKey } from '../../common/src/eventOrigin.js';
import type { IdempotencyClaim } from '../../common/src/idempotencyKeys.js';
import type { App } from '../../common/src/apps.js';
import { newId } from '../../common/src/ids.js';

/** Records handled at once (claims in one bulk insert); a fetched batch is cut into parts of this size. */
const EVENTS_BATCH = 500;
/** Records submitted at the same time within a part (distinct Kafka keys). */
const EVENTS_CONCURRENCY = 32;

type Submittable = { message: KafkaMessage; app: App; sub: Submission; lane: string };
type Prepared = Submittable | { message: KafkaMessage; reject: { code: string; reason: string } };

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

  const reject = async (topic: string, partition: number, message: KafkaMessage, code: string, reason: string) => {
    deps.metrics.deadLettered.inc({ code });
    deps.metrics.received.inc({ source: 'kafka', outcome: 'dead-lettered' });
    deps.logger.warn({ topic, partition, offset: message.offset, code, reason }, 'record sent to dead letters');
    await sendToDeadLetters(deps.dlq, { topic, partition, message }, code, reason, topics.groups.collectorEvents, topics.dlq);
  };

  /** Decodes and validates a record: a submission, or the reason it goes to dead letters. */
  const prepare = async (partition: number, message: KafkaMessage): Promise<Prepared> => {
    let ev: BusinessEvent;
    try {
      ev = decodeRecord('BusinessEvent', message.value, message.headers);
    } catch (err) {
      if (err instanceof RecordDecodeError) return { message, reject: { code: err.code, reason: err.message } };
      throw err;
    }
    const app = await deps.apps.get(ev.app);
    if (!app) return { message, reject: { code: 'UNKNOWN_APP', reason: `unknown app "${ev.app}"` } };
    try {
      const sub = validateSubmission(toBody(ev), app.limits);
      sub.idempotencyKey ??= eventIdempotencyKey(partition, message);
      return { message, app, sub, lane: message.key?.toString() ?? `#offset:${message.offset}` };
    } catch (err) {
      if (err instanceof PushError && !err.retriable) return { message, reject: { code: err.code, reason: err.message } };
      throw err;
    }
  };

  /**
   * One fetched batch at once: decode and validate every record, claim all
   * idempotency keys in one bulk insert, then submit the claimed records
   * concurrently (EVENTS_CONCURRENCY at a time), records with the same Kafka
   * key one after another so one user's events keep their order. Resolves with
   * the offsets handled; rejects with the first retriable failure after the
   * records already started have finished.
   */
  const handleBatch = async (topic: string, partition: number, messages: KafkaMessage[], keepGoing: () => boolean): Promise<Set<string>> => {
    const done = new Set<string>();
    const prepared: Prepared[] = [];
    for (const m of messages) prepared.push(await prepare(partition, m));

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
    try {
      claims = await deps.idempotency.claimMany(firsts.map((p) => ({ app: p.app._id, key: p.sub.idempotencyKey!, msgId: newId() })));
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
        const key = p.sub.idempotencyKey!;
        let result;
        try {
          result = await submitMessage(deps, p.app, { ...p.sub, idempotencyKey: undefined });
        } catch (err) {
          await deps.idempotency.release(p.app._id, key).catch(() => undefined);
          throw err;
        }
        await deps.idempotency.complete(p.app._id, key, result.id).catch((err: Error) =>
          deps.logger.warn({ err: err.message, id: result.id }, 'could not mark the idempotency key complete'),
        );
        deps.metrics.received.inc({ source: 'kafka', outcome: result.status });
      } catch (err) {
        if (err instanceof PushError && !err.retriable) return reject(topic, partition, p.message, err.code, err.message);
        throw err;
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
    let failure: unknown;
    /** Handles one record; false (and the first failure kept) when it failed. */
    const attempt = async (p: Prepared): Promise<boolean> => {
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
    if (failure !== undefined) throw Object.assign(failure as object, { handled: done });
    return done;
  };

  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: 4,
    eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
      let handled = new Set<string>();
      try {
        for (let i = 0; i < batch.messages.length; i += EVENTS_BATCH) {
          if (!isRunning() || isStale()) break;
          const part = batch.messages.slice(i, i + EVENTS_BATCH);
          try {
            for (const o of await handleBatch(batch.topic, batch.partition, part, () => isRunning() && !isStale())) handled.add(o);
          } catch (err) {
            for (const o of (err as { handled?: Set<string> }).handled ?? []) handled.add(o);
            throw err;
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
        handled = new Set();
      }
    },
  });
  return consumer;
}
