import type { Redis } from 'ioredis';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
import type { MessageStore } from '../../common/src/messageStore.js';
import type { Logger } from '../../common/src/logger.js';
import { ingestMessages } from './submitMessage.js';
import type { CollectorMetrics } from './collectorMetrics.js';

/**
 * Marks messages published in batches, off the request path. If the process
 * dies before a flush, the sweeper republishes them: a duplicate on Kafka is
 * harmless (ids make delivery idempotent), a lost message is not.
 */
export function createPublishedMarker(store: MessageStore, logger: Logger, { maxPending = 50_000, flushMs = 200 } = {}) {
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
  store: MessageStore;
  publisher: BatchPublisher;
  redis: Redis;
  logger: Logger;
  metrics: CollectorMetrics;
  ingestTopic: string;
  /** Only messages older than this are swept, so in-flight requests are left alone. Default 5000 ms. */
  graceMs?: number;
  intervalMs?: number;
  batchSize?: number;
}

const LOCK_KEY = 'push:outbox:lock';

/**
 * Republishes stored-but-unpublished persistent messages (Kafka was down when
 * they arrived). One collector sweeps at a time, holding a Redis lease.
 */
export function startOutboxSweeper(deps: OutboxDeps): { sweep(): Promise<number>; close(): Promise<void> } {
  const { store, publisher, redis, logger, metrics, ingestTopic, graceMs = 5000, intervalMs = 2000, batchSize = 200 } = deps;
  const owner = `${process.pid}-${Math.random().toString(36).slice(2)}`;
  let running: Promise<number> | undefined;

  const sweepOnce = async (): Promise<number> => {
    const got = await redis.set(LOCK_KEY, owner, 'PX', intervalMs * 5, 'NX').catch(() => null);
    if (got !== 'OK' && (await redis.get(LOCK_KEY).catch(() => null)) !== owner) return 0;
    let total = 0;
    try {
      for (;;) {
        const batch = await store.unpublished(new Date(Date.now() - graceMs), batchSize);
        if (batch.length === 0) break;
        for (const msg of batch) {
          await publisher.publish(ingestTopic, ingestMessages(msg));
        }
        await store.markPublished(batch.map((m) => m._id));
        total += batch.length;
        metrics.outboxRepublished.inc(batch.length);
        await redis.pexpire(LOCK_KEY, intervalMs * 5);
      }
    } finally {
      if ((await redis.get(LOCK_KEY).catch(() => null)) === owner) await redis.del(LOCK_KEY).catch(() => undefined);
    }
    if (total > 0) logger.info({ count: total }, 'outbox republished stored messages');
    return total;
  };

  const sweep = () => {
    running ??= sweepOnce()
      .catch((err: Error) => {
        logger.debug({ err: err.message }, 'outbox sweep deferred');
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
