import { randomBytes } from 'node:crypto';
import type { Kafka, KafkaMessage, Message } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import type { Logger } from '../../platform/logger.js';
import type { Topics } from '../../protocol/topics.js';
import { newId } from '../../protocol/ids.js';
import { ORIGIN_HEADER } from '../../protocol/eventOrigin.js';
import { PushError, unavailable } from '../../platform/errors.js';
import { decodeRecord } from '../../schemas/registry.js';
import { DEFAULT_TTL_SECONDS } from '../../collector/src/validateMessage.js';
import { headerText, REPLAY_HEADER } from '../../dispatcher/src/replayGuard.js';
import type { ReplayRequest, ReplayTopic } from './replayRequest.js';
import type { PartitionProgress, Replay, ReplayProgress, ReplayStore } from './replayStore.js';
import { resolveRange, scanRanges } from './replayScan.js';

/**
 *   push:replay-lease:<id>   the admin process running the replay (expires unless renewed)
 *   push:replay-stop:<id>    set by a stop request; the runner halts when it sees it
 */
const leaseKey = (id: string) => `push:replay-lease:${id}`;
const stopKey = (id: string) => `push:replay-stop:${id}`;
const LEASE_MS = 15_000;
const RENEW = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) else return 0 end`;
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

export interface ReplayRunnerDeps {
  kafka: Kafka;
  redis: Redis;
  store: ReplayStore;
  publisher: BatchPublisher;
  topics: Topics;
  logger: Logger;
  /** Replays running at once across the cluster, at most. */
  maxRunning: number;
  /** How often running replays without a live owner are looked for. Default 5000 ms. */
  takeoverMs?: number;
}

const physical = (topics: Topics, t: ReplayTopic) => (t === 'push.ingest' ? topics.ingest : topics.events);

const offsetsOf = (kafka: Kafka, topic: string, req: ReplayRequest) =>
  resolveRange(kafka, topic, req.fromMs, req.toMs).catch((err: Error) => {
    throw unavailable(`cannot resolve the time range to offsets of ${topic}: ${err.message}`, err);
  });

/**
 * Decides whether one record of the range is replayed: not a copy made by an
 * earlier replay, decodable, passing the app/user filter, and unexpired (its
 * ttl counted from the original record); for push.ingest also persistent
 * (transient records were for their moment). A push.events record that became
 * a message keeps its identity: the collector finds the idempotency key it was
 * submitted under (its own, or its original position, see eventOrigin.ts),
 * kept for as long as the message lives, and answers with the original id
 * instead of submitting it again, so no device gets it twice, acked, parked or not.
 * Returns the app, or the reason it is skipped.
 */
type Verdict = { app: string; skip?: undefined } | { skip: string; app?: undefined };

function classify(topic: ReplayTopic, m: KafkaMessage, filter: { app?: string; user?: string }, range: { fromMs: number; toMs: number }, now: number): Verdict {
  const ts = Number(m.timestamp);
  if (ts < range.fromMs || ts > range.toMs) return { skip: 'outside-range' };
  if (headerText(m.headers, REPLAY_HEADER) !== undefined) return { skip: 'replay-copy' };
  try {
    if (topic === 'push.ingest') {
      const r = decodeRecord('IngestRecord', m.value, m.headers);
      if ((filter.app && r.app !== filter.app) || (filter.user && r.user !== filter.user)) return { skip: 'filtered' };
      if (!r.persistent) return { skip: 'transient' };
      if (r.expiresAt <= now) return { skip: 'expired' };
      return { app: r.app };
    }
    const ev = decodeRecord('BusinessEvent', m.value, m.headers);
    if (filter.app && ev.app !== filter.app) return { skip: 'filtered' };
    // Its lifetime counts from when it was first produced, not from the replay.
    if (ts + (ev.ttlSeconds ?? DEFAULT_TTL_SECONDS) * 1000 <= now) return { skip: 'expired' };
    return { app: ev.app };
  } catch {
    return { skip: 'undecodable' };
  }
}

function copyOf(m: KafkaMessage, replayId: string, topic: ReplayTopic, partition: number): Message {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) headers[k] = first.toString();
  }
  headers[REPLAY_HEADER] = replayId;
  if (topic === 'push.events' && headers[ORIGIN_HEADER] === undefined) headers[ORIGIN_HEADER] = `${partition}:${m.offset}`;
  return { key: m.key, value: m.value, headers };
}

/**
 * Replays as tasks: each runs in exactly one admin process (a Redis lease on the
 * replay id, renewed while it runs; another admin process takes over a replay
 * whose lease expired, from the last saved positions), at a bounded rate,
 * with progress saved every half second and a stop flag checked as often.
 * Records are re-produced to their own topic with their key (same partition,
 * same single inbox writer), their original ids and a `push-replay` header;
 * the dispatcher's replay guard makes the re-dispatch idempotent.
 */
export function createReplayRunner(deps: ReplayRunnerDeps) {
  const { kafka, redis, store, publisher, topics, logger } = deps;
  const owner = `${process.pid}-${randomBytes(4).toString('hex')}`;
  /** Replays running in this process, with a way to stop each at once. */
  const active = new Map<string, { done: Promise<void>; stop: () => void }>();
  let closed = false;

  const groupOf = (id: string) => `${topics.groups.dispatcher}-replay-${id}`;

  const run = async (replay: Replay, onStop: (stop: () => void) => void) => {
    const id = replay.id;
    const progress = replay.progress;
    const fromMs = Date.parse(replay.from);
    const toMs = Date.parse(replay.to);
    let halt: 'stopped' | 'lease-lost' | 'closing' | undefined;
    onStop(() => (halt ??= 'stopped'));
    const tick = async () => {
      if (closed) halt ??= 'closing';
      if ((await redis.exists(stopKey(id))) === 1) halt ??= 'stopped';
      if ((await redis.eval(RENEW, 1, leaseKey(id), owner, LEASE_MS)) !== 1) halt ??= 'lease-lost';
      if (halt !== 'lease-lost') await store.saveProgress(id, progress);
    };
    let ticking: Promise<void> | undefined;
    const timer = setInterval(() => {
      ticking ??= tick()
        .catch((err: Error) => logger.warn({ err: err.message, replay: id }, 'replay tick failed'))
        .finally(() => (ticking = undefined));
    }, 500);
    // The final write must not race a progress write (FerretDB does not isolate updates of one document).
    const stopTicking = async () => {
      clearInterval(timer);
      await ticking;
    };
    const chunkSize = Math.max(1, Math.min(1000, Math.ceil(replay.ratePerSecond / 10)));
    const startedAt = Date.now();
    const replayedAtStart = progress.replayed;
    try {
      await scanRanges({
        kafka,
        groupId: groupOf(id),
        topic: physical(topics, replay.topic),
        partitions: progress.partitions,
        shouldStop: () => halt !== undefined,
        onMessages: async (p, messages, heartbeat) => {
          let chunk: Message[] = [];
          let next = p.position;
          let scanned = 0;
          // Counters move with the position (in one synchronous step), so saved progress is
          // consistent and an admin process taking over from it counts nothing twice.
          const flush = async () => {
            if (chunk.length > 0) await publisher.publish(physical(topics, replay.topic), chunk);
            progress.scanned += scanned;
            progress.matched += chunk.length;
            progress.replayed += chunk.length;
            scanned = 0;
            chunk = [];
            p.position = next;
            // Pace: never ahead of ratePerSecond since this runner started.
            const due = startedAt + ((progress.replayed - replayedAtStart) / replay.ratePerSecond) * 1000 - Date.now();
            if (due > 0) await new Promise((r) => setTimeout(r, due));
            await heartbeat();
          };
          for (const m of messages) {
            if (halt !== undefined) break;
            scanned++;
            const c = classify(replay.topic, m, replay, { fromMs, toMs }, Date.now());
            if (c.app !== undefined) chunk.push(copyOf(m, id, replay.topic, p.partition));
            next = (BigInt(m.offset) + 1n).toString();
            if (chunk.length >= chunkSize) await flush();
          }
          await flush();
        },
      });
      await stopTicking();
      if (halt === 'lease-lost' || halt === 'closing') {
        logger.warn({ replay: id, reason: halt }, 'replay paused here; an admin process holding the lease continues it');
        return;
      }
      await store.finish(id, halt === 'stopped' ? 'stopped' : 'done', progress);
      logger.info({ replay: id, state: halt ?? 'done', replayed: progress.replayed, ms: Date.now() - startedAt }, 'replay finished');
    } catch (err) {
      await stopTicking();
      logger.error({ replay: id, err: (err as Error).message }, 'replay failed');
      await store.finish(id, 'failed', progress, (err as Error).message).catch(() => undefined);
    } finally {
      await stopTicking();
      await redis
        .eval(`if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end`, 1, leaseKey(id), owner)
        .catch(() => 0);
    }
  };

  /** Runs a replay here if this admin process gets its lease. */
  const claim = async (replay: Replay): Promise<boolean> => {
    if (closed || active.has(replay.id)) return false;
    if ((await redis.set(leaseKey(replay.id), owner, 'PX', LEASE_MS, 'NX')) !== 'OK') return false;
    if ((await redis.exists(stopKey(replay.id))) === 1) {
      await store.finish(replay.id, 'stopped', undefined);
      await redis.del(leaseKey(replay.id));
      return false;
    }
    const entry = { done: Promise.resolve(), stop: () => undefined as void };
    entry.done = run(replay, (stop) => (entry.stop = stop)).finally(() => active.delete(replay.id));
    active.set(replay.id, entry);
    return true;
  };

  const takeover = setInterval(() => {
    void (async () => {
      for (const r of await store.running()) if (!active.has(r.id)) await claim(r);
    })().catch((err: Error) => logger.warn({ err: err.message }, 'replay takeover scan failed'));
  }, deps.takeoverMs ?? 5000);

  return {
    async dryRun(req: ReplayRequest): Promise<DryRunReport> {
      const topic = physical(topics, req.topic);
      const partitions = await offsetsOf(kafka, topic, req);
      const matched = new Map<number, number>();
      const apps: Record<string, number> = {};
      const skipped: Record<string, number> = {};
      let scanned = 0;
      let tooLarge = false;
      await scanRanges({
        kafka,
        groupId: `${topics.groups.dispatcher}-replay-dry-${newId()}`,
        topic,
        partitions: partitions.map((p) => ({ ...p })),
        shouldStop: () => tooLarge,
        onMessages: async (p, messages) => {
          const now = Date.now();
          for (const m of messages) {
            scanned++;
            const c = classify(req.topic, m, req, req, now);
            if (c.app !== undefined) {
              matched.set(p.partition, (matched.get(p.partition) ?? 0) + 1);
              apps[c.app] = (apps[c.app] ?? 0) + 1;
            } else skipped[c.skip] = (skipped[c.skip] ?? 0) + 1;
          }
          p.position = (BigInt(messages.at(-1)!.offset) + 1n).toString();
          if (scanned > DRY_RUN_MAX_SCANNED) tooLarge = true;
        },
      });
      if (tooLarge) throw new PushError('INVALID_REQUEST', `range too large for a dry run: more than ${DRY_RUN_MAX_SCANNED} records`, { status: 400 });
      return {
        dryRun: true,
        topic: req.topic,
        from: new Date(req.fromMs).toISOString(),
        to: new Date(req.toMs).toISOString(),
        partitions: partitions.map((p) => ({
          partition: p.partition,
          startOffset: p.startOffset,
          endOffset: p.endOffset,
          matched: matched.get(p.partition) ?? 0,
        })),
        apps,
        total: [...matched.values()].reduce((a, b) => a + b, 0),
        scanned,
        skipped,
      };
    },

    async start(req: ReplayRequest): Promise<Replay> {
      if ((await store.running()).length >= deps.maxRunning) {
        throw new PushError('TOO_MANY_REPLAYS', `${deps.maxRunning} replays are running already; stop one or wait`, { status: 429 });
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
      await claim(replay);
      return replay;
    },

    /**
     * Asks the replay to stop wherever it runs (a flag its runner checks every
     * half second) and marks it stopped. When it runs here, it halts at once and
     * the answer carries its final progress.
     */
    async stop(replay: Replay): Promise<Replay> {
      await redis.set(stopKey(replay.id), '1', 'EX', 7 * 86_400);
      const local = active.get(replay.id);
      if (local) {
        local.stop();
        await Promise.race([local.done, new Promise((r) => setTimeout(r, 5000))]);
      }
      await store.finish(replay.id, 'stopped', undefined);
      // A runner elsewhere writes its final progress (state stopped) within a second.
      return { ...((await store.get(replay.id)) ?? replay), state: 'stopped' };
    },

    async close(): Promise<void> {
      closed = true;
      clearInterval(takeover);
      await Promise.all([...active.values()].map((a) => a.done));
    },
  };
}

export type ReplayRunner = ReturnType<typeof createReplayRunner>;
export type { ReplayProgress };
