import type { Kafka } from 'kafkajs';
import { newId } from '../../protocol/ids.js';
import { PushError, unavailable } from '../../platform/errors.js';
import { createLease } from '../../platform/lease.js';
import type { ReplayRequest, ReplayTopic } from './replayRequest.js';
import type { PartitionProgress, Replay, ReplayProgress } from './replayStore.js';
import { resolveRange, scanRanges } from './replayScan.js';
import { classify, physical, type Verdict } from './replayRecords.js';
import { LEASE_MS, leaseKey, ReplayExecution, stopKey, type ReplayExecutionDeps } from './replayExecution.js';

/** Records scanned by one dry run at most, so a request cannot read a topic for minutes. */
const DRY_RUN_MAX_SCANNED = 2_000_000;

export interface DryRunReport {
  dryRun: true;
  topic: ReplayTopic;
  from: string;
  to: string;
  partitions: { partition: number; startOffset: string; endOffset: string; matched: number }[];
  apps: Record<string, number>;
  total: number;
  scanned: number;
  skipped: Record<string, number>;
}

export interface ReplayRunnerDeps extends ReplayExecutionDeps {
  /** Replays running at once across the cluster, at most. */
  maxRunning: number;
  /** How often running replays without a live owner are looked for. Default 5000 ms. */
  takeoverMs?: number;
}

const offsetsOf = (kafka: Kafka, topic: string, req: ReplayRequest) =>
  resolveRange(kafka, topic, req.fromMs, req.toMs).catch((err: Error) => {
    throw unavailable(`cannot resolve the time range to offsets of ${topic}: ${err.message}`, err);
  });

/** What a dry run counts while it scans. */
class DryRunCounts {
  readonly matched = new Map<number, number>();
  readonly apps: Record<string, number> = {};
  readonly skipped: Record<string, number> = {};
  scanned = 0;

  count(partition: number, c: Verdict): void {
    this.scanned++;
    if (c.app !== undefined) {
      this.matched.set(partition, (this.matched.get(partition) ?? 0) + 1);
      this.apps[c.app] = (this.apps[c.app] ?? 0) + 1;
    } else this.skipped[c.skip] = (this.skipped[c.skip] ?? 0) + 1;
  }

  report(req: ReplayRequest, partitions: PartitionProgress[]): DryRunReport {
    return {
      dryRun: true,
      topic: req.topic,
      from: new Date(req.fromMs).toISOString(),
      to: new Date(req.toMs).toISOString(),
      partitions: partitions.map((p) => ({
        partition: p.partition,
        startOffset: p.startOffset,
        endOffset: p.endOffset,
        matched: this.matched.get(p.partition) ?? 0,
      })),
      apps: this.apps,
      total: [...this.matched.values()].reduce((a, b) => a + b, 0),
      scanned: this.scanned,
      skipped: this.skipped,
    };
  }
}

/**
 * Replays as tasks: each runs in exactly one admin process (a lease on the
 * replay id, platform/lease.ts, renewed while it runs; another admin process takes over a replay
 * whose lease expired, from the last saved positions), at a bounded rate,
 * with progress saved every half second and a stop flag checked as often.
 * Records are re-produced to their own topic with their key (same partition,
 * same single inbox writer), their original ids and a `push-replay` header;
 * the dispatcher's replay guard makes the re-dispatch idempotent.
 */
export class ReplayRunner {
  /** Replays running in this process. */
  private readonly active = new Map<string, { done: Promise<void>; execution: ReplayExecution }>();
  private closed = false;
  private readonly takeover: NodeJS.Timeout;

  constructor(private readonly deps: ReplayRunnerDeps) {
    this.takeover = setInterval(() => this.takeOver(), deps.takeoverMs ?? 5000);
  }

  /** Counts what a replay of the range would re-produce, per partition, app and skip reason; produces nothing. */
  async dryRun(req: ReplayRequest): Promise<DryRunReport> {
    const { kafka, topics } = this.deps;
    const topic = physical(topics, req.topic);
    const partitions = await offsetsOf(kafka, topic, req);
    const counts = new DryRunCounts();
    await scanRanges({
      kafka,
      groupId: `${topics.groups.dispatcher}-replay-dry-${newId()}`,
      topic,
      partitions: partitions.map((p) => ({ ...p })),
      shouldStop: () => counts.scanned > DRY_RUN_MAX_SCANNED,
      onMessages: async (p, messages) => {
        const now = Date.now();
        for (const m of messages) counts.count(p.partition, classify(req.topic, m, req, req, now));
        p.position = (BigInt(messages.at(-1)!.offset) + 1n).toString();
      },
    });
    if (counts.scanned > DRY_RUN_MAX_SCANNED) {
      throw new PushError('INVALID_REQUEST', `range too large for a dry run: more than ${DRY_RUN_MAX_SCANNED} records`, { status: 400 });
    }
    return counts.report(req, partitions);
  }

  /** Creates a replay of the range and runs it here (or wherever its lease is taken). */
  async start(req: ReplayRequest): Promise<Replay> {
    const { kafka, store, topics, maxRunning } = this.deps;
    if ((await store.running()).length >= maxRunning) {
      throw new PushError('TOO_MANY_REPLAYS', `${maxRunning} replays are running already; stop one or wait`, { status: 429 });
    }
    const partitions: PartitionProgress[] = await offsetsOf(kafka, physical(topics, req.topic), req);
    const now = new Date().toISOString();
    const replay: Replay = {
      id: newId(),
      topic: req.topic,
      from: new Date(req.fromMs).toISOString(),
      to: new Date(req.toMs).toISOString(),
      ...(req.app ? { app: req.app } : {}),
      ...(req.user ? { user: req.user } : {}),
      ratePerSecond: req.ratePerSecond,
      state: 'running',
      createdAt: now,
      updatedAt: now,
      progress: { scanned: 0, matched: 0, replayed: 0, partitions },
    };
    await store.create(replay);
    await this.claim(replay);
    return replay;
  }

  /**
   * Asks the replay to stop wherever it runs (a flag its runner checks every
   * half second) and marks it stopped. When it runs here, it halts at once and
   * the answer carries its final progress.
   */
  async stop(replay: Replay): Promise<Replay> {
    const { redis, store } = this.deps;
    await redis.set(stopKey(replay.id), '1', 'EX', 7 * 86_400);
    const local = this.active.get(replay.id);
    if (local) {
      local.execution.stop();
      await Promise.race([local.done, new Promise((r) => setTimeout(r, 5000))]);
    }
    await store.finish(replay.id, 'stopped', undefined);
    // A runner elsewhere writes its final progress (state stopped) within a second.
    return { ...((await store.get(replay.id)) ?? replay), state: 'stopped' };
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.takeover);
    await Promise.all([...this.active.values()].map((a) => a.done));
  }

  /** Runs a replay here if this admin process gets its lease. */
  private async claim(replay: Replay): Promise<boolean> {
    const { redis, store } = this.deps;
    if (this.closed || this.active.has(replay.id)) return false;
    const lease = createLease(redis, leaseKey(replay.id), LEASE_MS);
    if (!(await lease.acquire())) return false;
    if ((await redis.exists(stopKey(replay.id))) === 1) {
      await store.finish(replay.id, 'stopped', undefined);
      await lease.release();
      return false;
    }
    const execution = new ReplayExecution(this.deps, replay, lease, () => this.closed);
    const done = execution.run().finally(() => this.active.delete(replay.id));
    this.active.set(replay.id, { done, execution });
    return true;
  }

  /** Claims running replays whose lease lapsed (their admin process died or lost Redis). */
  private takeOver(): void {
    void (async () => {
      for (const r of await this.deps.store.running()) if (!this.active.has(r.id)) await this.claim(r);
    })().catch((err: Error) => this.deps.logger.warn({ err: err.message }, 'replay takeover scan failed'));
  }
}

export function createReplayRunner(deps: ReplayRunnerDeps): ReplayRunner {
  return new ReplayRunner(deps);
}

export type { ReplayProgress };
