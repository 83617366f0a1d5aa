import type { Redis } from 'ioredis';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
import type { MessagesStore, StoredMessage } from '../../store/messages.js';
import type { Logger } from '../../common/src/logger.js';
import { PushError } from '../../common/src/errors.js';
import { encodeRecord } from '../../schemas/registry.js';
import { DEFAULT_FANOUT_LIMITS, ingestMessages } from './submitMessage.js';
import { checkFanout, type FanoutLimits } from './checkFanout.js';
import type { CollectorMetrics } from './collectorMetrics.js';
import { createLease } from '../../platform/lease.js';

/**
 * Marks messages published in batches, off the request path. If the process
 * dies before a flush, the sweeper republishes them: a duplicate on Kafka is
 * harmless (ids make delivery idempotent), a lost message is not.
 */
export function createPublishedMarker(store: Pick<MessagesStore, 'markPublished'>, logger: Logger, { maxPending = 50_000, flushMs = 200 } = {}) {
  let pending: string[] = [];
  const flush = async () => {
    if (pending.length === 0) return;
    const ids = pending;
    pending = [];
    await store.markPublished(ids).catch((err: Error) => logger.warn({ err: err.message, count: ids.length }, 'markPublished failed; the outbox will republish'));
  };
  const timer = setInterval(() => void flush(), flushMs);
  return {
    mark(id: string) {
      if (pending.length < maxPending) pending.push(id);
    },
    async close() {
      clearInterval(timer);
      await flush();
    },
  };
}

export interface OutboxDeps {
  store: MessagesStore;
  publisher: BatchPublisher;
  redis: Redis;
  logger: Logger;
  metrics: CollectorMetrics;
  ingestTopic: string;
  /** Where an entry that can never be published goes, with the reason, instead of blocking the outbox. */
  dlqTopic: string;
  /** The same bounds as at submit time (a message stored before they applied may exceed them). */
  fanout?: FanoutLimits;
  /** Only messages older than this are swept, so in-flight requests are left alone. Default 5000 ms. */
  graceMs?: number;
  /**
   * A batch whose messages are not all in the store is left alone this long (its
   * insert may still be running: the outbox entry is written first), then its
   * missing messages count as never stored. Default 60000 ms.
   */
  missingGraceMs?: number;
  intervalMs?: number;
  batchSize?: number;
}

const LOCK_KEY = 'push:outbox:lock';

/** Errors no retry can fix: the entry is dead-lettered and the sweep goes on. */
const UNPUBLISHABLE = new Set(['FANOUT_TOO_LARGE', 'PAYLOAD_TOO_LARGE', 'RECORD_TOO_LARGE', 'PUBLISH_TOO_LARGE', 'RECORD_REJECTED']);

/**
 * Republishes stored-but-unpublished persistent messages (Kafka was down when
 * they arrived). One collector sweeps at a time, holding a Redis lease. An
 * entry that can never be published is dead-lettered, not retried forever in
 * front of every later entry; an infrastructure error ends the sweep (the
 * next one retries from the same entry, in order).
 */
export function startOutboxSweeper(deps: OutboxDeps): { sweep(): Promise<number>; close(): Promise<void> } {
  const { store, publisher, redis, logger, metrics, ingestTopic, dlqTopic, fanout = DEFAULT_FANOUT_LIMITS, graceMs = 5000, missingGraceMs = 60_000, intervalMs = 2000, batchSize = 200 } = deps;
  // One sweeper at a time (platform/lease.ts); a sweep that lost it stops.
  const lease = createLease(redis, LOCK_KEY, intervalMs * 5);
  let running: Promise<number> | undefined;
  let legacyAdopted = false;

  const deadLetter = async (msg: StoredMessage, err: PushError) => {
    const summary = {
      id: msg._id,
      app: msg.app,
      target: msg.target,
      recipients: msg.users?.length ?? null,
      payloadBytes: Buffer.byteLength(msg.payload),
      createdAt: msg.createdAt.toISOString(),
      traceId: msg.traceId,
    };
    // The summary, not the message: the message itself is what could not be published
    // (it stays in the store, by id, until it expires).
    const rec = encodeRecord('DeadLetter', {
      sourceTopic: 'outbox',
      partition: -1,
      offset: msg._id,
      key: Buffer.from(msg.app),
      value: Buffer.from(JSON.stringify(summary)),
      headers: { 'push-message-id': msg._id, 'push-app': msg.app, 'push-trace': msg.traceId },
      errorCode: err.code,
      reason: err.message,
      consumer: 'collector-outbox',
      failedAt: Date.now(),
    });
    await publisher.publish(dlqTopic, [{ key: msg.app, value: rec.value, headers: rec.headers }]);
    metrics.deadLettered.inc({ code: err.code });
    logger.warn({ id: msg._id, app: msg.app, code: err.code, reason: err.message }, 'outbox entry cannot be published; dead-lettered');
  };

  /** Refused because its app holds its whole share of the publish queue (batchPublisher's maxOwnerShare). */
  const overShare = (err: unknown) => err instanceof PushError && err.code === 'OVERLOADED' && (err.details as { owner?: unknown } | undefined)?.owner !== undefined;

  /** Publishes one entry; false when it was dead-lettered instead. */
  const publishOne = async (msg: StoredMessage): Promise<boolean> => {
    try {
      checkFanout({ app: msg.app, users: msg.target === 'USER' ? (msg.users ?? []) : undefined, group: msg.group, payload: msg.payload, traceId: msg.traceId, collapseKey: msg.collapseKey }, fanout);
      // Owned by its app, like at submit time: an app's backlog cannot fill the queue for every other app.
      await publisher.publish(ingestTopic, ingestMessages(msg), msg.app);
      return true;
    } catch (err) {
      if (!(err instanceof PushError) || !UNPUBLISHABLE.has(err.code)) throw err;
      await deadLetter(msg, err);
      return false;
    }
  };

  const sweepOnce = async (): Promise<number> => {
    if (!(await lease.acquire().catch(() => false))) return 0;
    let total = 0;
    try {
      // Entries left by an earlier version (one per message) join the batches first, once.
      while (!legacyAdopted) {
        const moved = await store.adoptLegacyOutbox(batchSize);
        if (moved > 0) logger.info({ count: moved }, 'outbox entries of an earlier version adopted');
        legacyAdopted = moved < batchSize;
      }
      let extendedAt = Date.now();
      let leased = true;
      while (leased) {
        const batches = await store.unpublished(new Date(Date.now() - graceMs), batchSize);
        if (batches.length === 0) break;
        // Apps over their share of the publish queue: their later entries wait for the next
        // sweep (keeping each app's order) while other apps' entries go on.
        const waiting = new Set<string>();
        let handled = 0;
        for (const { batch, messages } of batches) {
          // Messages of a recent batch still missing: their insert may be running; later.
          if (messages.length < batch.ids.length && batch.at.getTime() > Date.now() - missingGraceMs) break;
          let published = 0;
          let complete = true;
          for (const msg of messages) {
            if (waiting.has(msg.app)) {
              complete = false;
              continue;
            }
            // A long batch keeps the lease; a lease lost meanwhile ends the sweep.
            if (Date.now() - extendedAt > intervalMs) {
              if (!(leased = await lease.extend())) break;
              extendedAt = Date.now();
            }
            try {
              if (await publishOne(msg)) published++;
            } catch (err) {
              if (!overShare(err)) throw err;
              waiting.add(msg.app);
              complete = false;
            }
          }
          total += published;
          metrics.outboxRepublished.inc(published);
          if (!leased) break;
          // A batch published in part is published again in whole later (ids make that harmless).
          if (complete) {
            await store.batchDone(batch._id);
            handled++;
          }
        }
        // Only entries of apps over their share (or still arriving) left: the next sweep takes them.
        if (handled === 0) break;
        if (leased) leased = await lease.extend();
        extendedAt = Date.now();
      }
    } finally {
      await lease.release();
      if (total > 0) logger.info({ count: total }, 'outbox republished stored messages');
    }
    return total;
  };
  const sweep = () => {
    running ??= sweepOnce()
      .catch((err: Error) => {
        logger.warn({ err: err.message }, 'outbox sweep deferred; retried next interval');
        return 0;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(() => void sweep(), intervalMs);
  return {
    sweep,
    async close() {
      clearInterval(timer);
      await running;
    },
  };
}
