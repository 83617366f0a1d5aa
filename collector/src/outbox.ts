import type { Redis } from 'ioredis';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import type { MessagesStore, StoredMessage } from '../../store/messages.js';
import type { Logger } from '../../platform/logger.js';
import { PushError } from '../../platform/errors.js';
import { encodeRecord } from '../../schemas/registry.js';
import { DEFAULT_FANOUT_LIMITS, ingestMessages } from './submitMessage.js';
import { checkFanout, type FanoutLimits } from './checkFanout.js';
import type { CollectorMetrics } from './collectorMetrics.js';
import { createLease, type Lease } from '../../platform/lease.js';

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
    await store
      .markPublished(ids)
      .catch((err: Error) => logger.warn({ err: err.message, count: ids.length }, 'markPublished failed; the outbox will republish'));
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

/** Refused because its app holds its whole share of the publish queue (batchPublisher's maxOwnerShare). */
const overShare = (err: unknown) =>
  err instanceof PushError && err.code === 'OVERLOADED' && (err.details as { owner?: unknown } | undefined)?.owner !== undefined;

/**
 * The dead letter of an outbox entry that can never be published: a summary, not the message
 * (the message itself is what could not be published; it stays in the store, by id, until it expires).
 */
function outboxDeadLetter(msg: StoredMessage, err: PushError) {
  const summary = {
    id: msg._id,
    app: msg.app,
    target: msg.target,
    recipients: msg.users?.length ?? null,
    payloadBytes: Buffer.byteLength(msg.payload),
    createdAt: msg.createdAt.toISOString(),
    traceId: msg.traceId,
  };
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
  return { key: msg.app, value: rec.value, headers: rec.headers };
}

/**
 * Republishes stored-but-unpublished persistent messages (Kafka was down when
 * they arrived). One collector sweeps at a time, holding a Redis lease. An
 * entry that can never be published is dead-lettered, not retried forever in
 * front of every later entry; an infrastructure error ends the sweep (the
 * next one retries from the same entry, in order).
 */
export class OutboxSweeper {
  private readonly fanout: FanoutLimits;
  private readonly graceMs: number;
  private readonly missingGraceMs: number;
  private readonly intervalMs: number;
  private readonly batchSize: number;
  /** One sweeper at a time (platform/lease.ts); a sweep that lost it stops. */
  private readonly lease: Lease;
  private readonly timer: NodeJS.Timeout;
  private running: Promise<number> | undefined;
  private legacyAdopted = false;
  /** When the lease was last extended, during a sweep. */
  private extendedAt = 0;

  constructor(private readonly deps: OutboxDeps) {
    this.fanout = deps.fanout ?? DEFAULT_FANOUT_LIMITS;
    this.graceMs = deps.graceMs ?? 5000;
    this.missingGraceMs = deps.missingGraceMs ?? 60_000;
    this.intervalMs = deps.intervalMs ?? 2000;
    this.batchSize = deps.batchSize ?? 200;
    this.lease = createLease(deps.redis, LOCK_KEY, this.intervalMs * 5);
    this.timer = setInterval(() => void this.sweep(), this.intervalMs);
  }

  /** One sweep (or the one running); resolves with the messages republished. Never rejects. */
  sweep(): Promise<number> {
    this.running ??= this.sweepOnce()
      .catch((err: Error) => {
        this.deps.logger.warn({ err: err.message }, 'outbox sweep deferred; retried next interval');
        return 0;
      })
      .finally(() => {
        this.running = undefined;
      });
    return this.running;
  }

  async close(): Promise<void> {
    clearInterval(this.timer);
    await this.running;
  }

  private async sweepOnce(): Promise<number> {
    const { store, logger } = this.deps;
    if (!(await this.lease.acquire().catch(() => false))) return 0;
    let total = 0;
    try {
      // Entries left by an earlier version (one per message) join the batches first, once.
      while (!this.legacyAdopted) {
        const moved = await store.adoptLegacyOutbox(this.batchSize);
        if (moved > 0) logger.info({ count: moved }, 'outbox entries of an earlier version adopted');
        this.legacyAdopted = moved < this.batchSize;
      }
      this.extendedAt = Date.now();
      for (let leased = true; leased;) {
        const batches = await store.unpublished(new Date(Date.now() - this.graceMs), this.batchSize);
        if (batches.length === 0) break;
        const step = await this.publishBatches(batches);
        total += step.published;
        leased = step.leased;
        // Only entries of apps over their share (or still arriving) left: the next sweep takes them.
        if (step.handled === 0) break;
        if (leased) leased = await this.lease.extend();
        this.extendedAt = Date.now();
      }
    } finally {
      await this.lease.release();
      if (total > 0) logger.info({ count: total }, 'outbox republished stored messages');
    }
    return total;
  }

  /**
   * Publishes the messages of outbox batches in order. Apps over their share of the publish
   * queue: their later entries wait for the next sweep (keeping each app's order) while other
   * apps' entries go on. A batch published in part is published again in whole later (ids make
   * that harmless). Stops when the lease is lost.
   */
  private async publishBatches(batches: Awaited<ReturnType<MessagesStore['unpublished']>>): Promise<{ published: number; handled: number; leased: boolean }> {
    const waiting = new Set<string>();
    let handled = 0;
    let total = 0;
    for (const { batch, messages } of batches) {
      // Messages of a recent batch still missing: their insert may be running; later.
      if (messages.length < batch.ids.length && batch.at.getTime() > Date.now() - this.missingGraceMs) break;
      let published = 0;
      let complete = true;
      for (const msg of messages) {
        if (waiting.has(msg.app)) {
          complete = false;
          continue;
        }
        // A long batch keeps the lease; a lease lost meanwhile ends the sweep.
        if (!(await this.keepLease())) {
          this.deps.metrics.outboxRepublished.inc(published);
          return { published: total + published, handled, leased: false };
        }
        try {
          if (await this.publishOne(msg)) published++;
        } catch (err) {
          if (!overShare(err)) throw err;
          waiting.add(msg.app);
          complete = false;
        }
      }
      total += published;
      this.deps.metrics.outboxRepublished.inc(published);
      if (complete) {
        await this.deps.store.batchDone(batch._id);
        handled++;
      }
    }
    return { published: total, handled, leased: true };
  }

  /** Extends the lease when the last extension is older than the interval; false when it was lost. */
  private async keepLease(): Promise<boolean> {
    if (Date.now() - this.extendedAt <= this.intervalMs) return true;
    if (!(await this.lease.extend())) return false;
    this.extendedAt = Date.now();
    return true;
  }

  /** Publishes one entry; false when it was dead-lettered instead. */
  private async publishOne(msg: StoredMessage): Promise<boolean> {
    const { publisher, ingestTopic } = this.deps;
    try {
      checkFanout(
        {
          app: msg.app,
          users: msg.target === 'USER' ? (msg.users ?? []) : undefined,
          group: msg.group,
          payload: msg.payload,
          traceId: msg.traceId,
          collapseKey: msg.collapseKey,
        },
        this.fanout,
      );
      // Owned by its app, like at submit time: an app's backlog cannot fill the queue for every other app.
      await publisher.publish(ingestTopic, ingestMessages(msg), msg.app);
      return true;
    } catch (err) {
      if (!(err instanceof PushError) || !UNPUBLISHABLE.has(err.code)) throw err;
      await this.deadLetter(msg, err);
      return false;
    }
  }

  private async deadLetter(msg: StoredMessage, err: PushError): Promise<void> {
    await this.deps.publisher.publish(this.deps.dlqTopic, [outboxDeadLetter(msg, err)]);
    this.deps.metrics.deadLettered.inc({ code: err.code });
    this.deps.logger.warn({ id: msg._id, app: msg.app, code: err.code, reason: err.message }, 'outbox entry cannot be published; dead-lettered');
  }
}

export function startOutboxSweeper(deps: OutboxDeps): OutboxSweeper {
  return new OutboxSweeper(deps);
}
