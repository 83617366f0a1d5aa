import type { Kafka, KafkaMessage, Message } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import type { Logger } from '../../platform/logger.js';
import type { Topics } from '../../protocol/topics.js';
import type { Lease } from '../../platform/lease.js';
import type { PartitionProgress, Replay, ReplayProgress, ReplayStore } from './replayStore.js';
import { scanRanges } from './replayScan.js';
import { classify, copyOf, physical } from './replayRecords.js';

/**
 *   push:replay-lease:<id>   the admin process running the replay (expires unless renewed)
 *   push:replay-stop:<id>    set by a stop request; the runner halts when it sees it
 */
export const leaseKey = (id: string) => `push:replay-lease:${id}`;
export const stopKey = (id: string) => `push:replay-stop:${id}`;
export const LEASE_MS = 15_000;
/** How often a running replay saves its progress, renews its lease and looks for a stop. */
const TICK_MS = 500;

export interface ReplayExecutionDeps {
  kafka: Kafka;
  redis: Redis;
  store: ReplayStore;
  publisher: BatchPublisher;
  topics: Topics;
  logger: Logger;
}

type Halt = 'stopped' | 'lease-lost' | 'closing';

/** Records copied so far in one partition's batch, not yet published. */
interface PendingCopies {
  chunk: Message[];
  scanned: number;
  /** The position after the last record looked at. */
  next: string;
}

/**
 * One replay running in this process while it holds the replay's lease:
 * copies the range's records at its rate, and every TICK_MS saves its
 * progress, renews the lease and looks for a stop flag.
 */
export class ReplayExecution {
  private halt: Halt | undefined;
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private readonly progress: ReplayProgress;
  private readonly range: { fromMs: number; toMs: number };
  private readonly chunkSize: number;
  private readonly startedAt = Date.now();
  private readonly replayedAtStart: number;

  constructor(
    private readonly deps: ReplayExecutionDeps,
    private readonly replay: Replay,
    private readonly lease: Lease,
    private readonly closing: () => boolean,
  ) {
    this.progress = replay.progress;
    this.range = { fromMs: Date.parse(replay.from), toMs: Date.parse(replay.to) };
    this.chunkSize = Math.max(1, Math.min(1000, Math.ceil(replay.ratePerSecond / 10)));
    this.replayedAtStart = this.progress.replayed;
  }

  /** Halts at the next record (a stop asked of this process). */
  stop(): void {
    this.halt ??= 'stopped';
  }

  /** Runs the replay to its end, a stop, a lost lease or this process closing; gives the lease up after. */
  async run(): Promise<void> {
    this.startTicking();
    try {
      await this.scan();
      await this.stopTicking();
      await this.conclude();
    } catch (err) {
      await this.stopTicking();
      this.deps.logger.error({ replay: this.replay.id, err: (err as Error).message }, 'replay failed');
      await this.deps.store.finish(this.replay.id, 'failed', this.progress, (err as Error).message).catch(() => undefined);
    } finally {
      await this.stopTicking();
      await this.lease.release();
    }
  }

  private startTicking(): void {
    this.timer = setInterval(() => {
      this.ticking ??= this.tick()
        .catch((err: Error) => this.deps.logger.warn({ err: err.message, replay: this.replay.id }, 'replay tick failed'))
        .finally(() => (this.ticking = undefined));
    }, TICK_MS);
  }

  /** The final write must not race a progress write (FerretDB does not isolate updates of one document). */
  private async stopTicking(): Promise<void> {
    clearInterval(this.timer);
    await this.ticking;
  }

  private async tick(): Promise<void> {
    const id = this.replay.id;
    if (this.closing()) this.halt ??= 'closing';
    if ((await this.deps.redis.exists(stopKey(id))) === 1) this.halt ??= 'stopped';
    if (!(await this.lease.extend())) this.halt ??= 'lease-lost';
    if (this.halt !== 'lease-lost') await this.deps.store.saveProgress(id, this.progress);
  }

  private scan(): Promise<void> {
    const { kafka, topics } = this.deps;
    return scanRanges({
      kafka,
      groupId: `${topics.groups.dispatcher}-replay-${this.replay.id}`,
      topic: physical(topics, this.replay.topic),
      partitions: this.progress.partitions,
      shouldStop: () => this.halt !== undefined,
      onMessages: (p, messages, heartbeat) => this.copyBatch(p, messages, heartbeat),
    });
  }

  /** Copies a partition's batch in chunks of chunkSize, each published before the position moves past it. */
  private async copyBatch(p: PartitionProgress, messages: KafkaMessage[], heartbeat: () => Promise<void>): Promise<void> {
    const pending: PendingCopies = { chunk: [], scanned: 0, next: p.position };
    for (const m of messages) {
      if (this.halt !== undefined) break;
      pending.scanned++;
      const c = classify(this.replay.topic, m, this.replay, this.range, Date.now());
      if (c.app !== undefined) pending.chunk.push(copyOf(m, this.replay.id, this.replay.topic, p.partition));
      pending.next = (BigInt(m.offset) + 1n).toString();
      if (pending.chunk.length >= this.chunkSize) await this.flush(p, pending, heartbeat);
    }
    await this.flush(p, pending, heartbeat);
  }

  /**
   * Publishes the pending copies. Counters move with the position (in one synchronous step), so saved
   * progress is consistent and an admin process taking over from it counts nothing twice.
   */
  private async flush(p: PartitionProgress, pending: PendingCopies, heartbeat: () => Promise<void>): Promise<void> {
    if (pending.chunk.length > 0) await this.deps.publisher.publish(physical(this.deps.topics, this.replay.topic), pending.chunk);
    this.progress.scanned += pending.scanned;
    this.progress.matched += pending.chunk.length;
    this.progress.replayed += pending.chunk.length;
    pending.scanned = 0;
    pending.chunk = [];
    p.position = pending.next;
    await this.pace();
    await heartbeat();
  }

  /** Never ahead of ratePerSecond since this runner started. */
  private async pace(): Promise<void> {
    const due = this.startedAt + ((this.progress.replayed - this.replayedAtStart) / this.replay.ratePerSecond) * 1000 - Date.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
  }

  private async conclude(): Promise<void> {
    const { logger, store } = this.deps;
    const id = this.replay.id;
    if (this.halt === 'lease-lost' || this.halt === 'closing') {
      logger.warn({ replay: id, reason: this.halt }, 'replay paused here; an admin process holding the lease continues it');
      return;
    }
    await store.finish(id, this.halt === 'stopped' ? 'stopped' : 'done', this.progress);
    logger.info({ replay: id, state: this.halt ?? 'done', replayed: this.progress.replayed, ms: Date.now() - this.startedAt }, 'replay finished');
  }
}
