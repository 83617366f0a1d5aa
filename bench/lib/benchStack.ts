/**
 * Our pipeline for one scenario: auth, collector, dispatchers and the admin
 * service from the test stack (isolated by topic prefix, Redis prefix and database on the
 * shared infra), plus pushers spawned here as separate processes with a
 * memory probe preloaded (see pusherProbe.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JWK } from 'jose';
import { pino } from 'pino';
import { infraUp } from '../../infra/stack.js';
import { createKafka } from '../../platform/kafka/kafka.js';
import { topicNames } from '../../protocol/topics.js';
import { startStack, type TestStack } from '../../test/support/stack.js';
import { freePort, ROOT } from '../../test/support/services.js';
import { cpuSeconds, rssBytes } from './procStats.js';
import { track } from './processes.js';
import { sleep } from './scenarioKit.js';

const PROBE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'pusherProbe.ts');

export interface MemoryProbe {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  gc: boolean;
}

export interface BenchPusher {
  nodeId: string;
  url: string;
  wsUrl: string;
  pid: number;
  proc: ChildProcess;
  /** Memory after a full GC, reported by the pusher itself. */
  memory(): Promise<MemoryProbe>;
  /** Profiles the pusher's CPU for the next `ms` and writes the profile to `file`. */
  cpuProfile(ms: number, file: string): Promise<string>;
  /** Writes a V8 heap snapshot of the pusher to `file` (slow; for profiling). */
  heapSnapshot(file: string): Promise<string>;
  cpuSeconds(): number;
  rssBytes(): number;
  metrics(): Promise<string>;
  output(): string;
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<void>;
}

export interface BenchStack {
  stack: TestStack;
  pushers: BenchPusher[];
  addPusher(env?: Record<string, string>): Promise<BenchPusher>;
  /** The auth service's current signing key, so load generators can mint tokens themselves. */
  signingKey(): Promise<{ kid: string; privateJwk: JWK }>;
  /** Pids of every service process of the stack (for CPU accounting). */
  servicePids(): Record<string, number>;
  stop(): Promise<void>;
}

let probeSeq = 0;

async function spawnPusher(env: Record<string, string>, nodeArgs: string[] = []): Promise<BenchPusher> {
  const port = await freePort();
  const proc = track(
    spawn(process.execPath, ['--expose-gc', ...nodeArgs, '--import', 'tsx', '--import', PROBE, path.join(ROOT, 'pusher/src/main.ts')], {
      cwd: ROOT,
      env: { ...process.env, LOG_LEVEL: 'warn', ...env, PUSHER_PORT: String(port) },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    }),
  );
  let out = '';
  const keep = (d: Buffer) => (out = (out + d.toString()).slice(-20_000));
  proc.stdout!.on('data', keep);
  proc.stderr!.on('data', keep);
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const url = `http://127.0.0.1:${port}`;
  const p: BenchPusher = {
    nodeId: env.NODE_ID!,
    url,
    wsUrl: `ws://127.0.0.1:${port}/v1/ws`,
    pid: proc.pid!,
    proc,
    memory() {
      const id = ++probeSeq;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('memory probe timed out')), 30_000);
        const on = (m: { probe?: string; id?: number } & MemoryProbe) => {
          if (m.probe !== 'memory' || m.id !== id) return;
          clearTimeout(timer);
          proc.off('message', on);
          resolve(m);
        };
        proc.on('message', on);
        proc.send({ probe: 'memory', id });
      });
    },
    cpuProfile(ms, file) {
      const id = ++probeSeq;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('cpu profile timed out')), ms + 60_000);
        const on = (m: { probe?: string; id?: number; file?: string; error?: string }) => {
          if (m.probe !== 'cpu-profile' || m.id !== id) return;
          clearTimeout(timer);
          proc.off('message', on);
          if (m.error) reject(new Error(m.error));
          else resolve(m.file!);
        };
        proc.on('message', on);
        proc.send({ probe: 'cpu-profile', id, ms, file });
      });
    },
    heapSnapshot(file) {
      const id = ++probeSeq;
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('heap snapshot timed out')), 120_000);
        const on = (m: { probe?: string; id?: number; file?: string }) => {
          if (m.probe !== 'heap-snapshot' || m.id !== id) return;
          clearTimeout(timer);
          proc.off('message', on);
          resolve(m.file!);
        };
        proc.on('message', on);
        proc.send({ probe: 'heap-snapshot', id, file });
      });
    },
    cpuSeconds: () => cpuSeconds(proc.pid!),
    rssBytes: () => rssBytes(proc.pid!),
    metrics: async () => (await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(10_000) })).text(),
    output: () => out,
    async stop(signal = 'SIGTERM', timeoutMs = 15_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      await exited;
      clearTimeout(timer);
    },
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`pusher exited with ${proc.exitCode}:\n${out}`);
    const ok = await fetch(`${url}/readyz`, { signal: AbortSignal.timeout(2000) }).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return p;
    await sleep(100);
  }
  await p.stop('SIGKILL');
  throw new Error(`pusher did not become ready within 60 s:\n${out}`);
}

export async function startBenchStack({
  pushers = 1,
  dispatchers = 1,
  env = {},
  pusherEnv = {},
  pusherNodeArgs = [],
  logsDir,
  log = () => undefined,
}: {
  pushers?: number;
  dispatchers?: number;
  env?: Record<string, string>;
  pusherEnv?: Record<string, string>;
  /** Extra Node options for the pushers, e.g. `--cpu-prof` to profile them. */
  pusherNodeArgs?: string[];
  /** Where each service's output (warnings and errors) is written when the stack stops. */
  logsDir?: string;
  log?: (line: string) => void;
} = {}): Promise<BenchStack> {
  await infraUp({ log });
  const stack = await startStack({ pushers: 0, dispatchers, env: { LOG_LEVEL: 'warn', ...env }, limits: { maxRecipients: 10_000 } });
  for (const svc of [stack.auth, stack.collector, ...stack.dispatchers, stack.admin]) track(svc.proc);
  const prefix = stack.env.KAFKA_TOPIC_PREFIX!.slice(0, -1);
  const list: BenchPusher[] = [];
  let started = 0;
  const b: BenchStack = {
    stack,
    pushers: list,
    async addPusher(extra = {}) {
      const p = await spawnPusher({ ...stack.env, ...pusherEnv, ...extra, NODE_ID: `${prefix}-p${++started}` }, pusherNodeArgs);
      list.push(p);
      return p;
    },
    async signingKey() {
      await stack.token('bench-key-warmup', 'd'); // makes auth create its key if it has none
      const doc = await stack.mongo
        .db(stack.env.MONGO_DB!)
        .collection<{ _id: string; privateJwk: JWK; retiredAt: Date | null }>('signing_keys')
        .find({ retiredAt: null })
        .sort({ _id: 1 })
        .limit(1)
        .next();
      if (!doc) throw new Error('auth has no signing key');
      return { kid: doc._id, privateJwk: doc.privateJwk };
    },
    servicePids() {
      const out: Record<string, number> = { auth: stack.auth.proc.pid!, collector: stack.collector.proc.pid! };
      stack.dispatchers.forEach((d, i) => (out[`dispatcher${i + 1}`] = d.proc.pid!));
      list.forEach((p, i) => (out[`pusher${i + 1}`] = p.pid));
      return out;
    },
    async stop() {
      await Promise.all(list.map((p) => p.stop('SIGTERM', 15_000)));
      await stack.stop();
      if (logsDir) {
        mkdirSync(logsDir, { recursive: true });
        const outputs: [string, string][] = [
          ['auth', stack.auth.output()],
          ['collector', stack.collector.output()],
          ...stack.dispatchers.map((d, i) => [`dispatcher${i + 1}`, d.output()] as [string, string]),
          ['admin', stack.admin.output()],
          ...list.map((p, i) => [`pusher${i + 1}`, p.output()] as [string, string]),
        ];
        for (const [name, text] of outputs) if (text) writeFileSync(path.join(logsDir, `${name}.log`), text.slice(-200_000));
      }
    },
  };
  try {
    await Promise.all(Array.from({ length: pushers }, () => b.addPusher()));
  } catch (err) {
    await b.stop();
    throw err;
  }
  return b;
}

/**
 * Records of `push.ingest` (and `push.events`) the dispatcher (collector)
 * group has not committed yet: 0 means the pipeline has drained.
 */
export async function pipelineLag(b: BenchStack): Promise<{ ingest: number; events: number }> {
  const topics = topicNames(b.stack.env.KAFKA_TOPIC_PREFIX!);
  const kafka = createKafka({ clientId: 'bench-lag', brokers: [process.env.KAFKA_BROKERS ?? '127.0.0.1:9092'], logger: pino({ level: 'silent' }) });
  const admin = kafka.admin();
  await admin.connect();
  try {
    const lag = async (topic: string, groupId: string) => {
      const ends = await admin.fetchTopicOffsets(topic).catch(() => []);
      if (ends.length === 0) return 0;
      const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
      const at = new Map((committed?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      return ends.reduce((a, e) => a + Math.max(0, Number(e.high) - Math.max(0, at.get(e.partition) ?? 0)), 0);
    };
    return { ingest: await lag(topics.ingest, topics.groups.dispatcher), events: await lag(topics.events, topics.groups.collectorEvents) };
  } finally {
    await admin.disconnect();
  }
}
