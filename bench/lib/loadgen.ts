/**
 * The load generator, seen from the bench process: several forked worker
 * processes (loadgenWorker.ts), each holding at most `perWorker` clients, so
 * no process comes near the open-file limit (`ulimit -Hn`, 20,000 here).
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { JWK } from 'jose';
import { LatencyHistogram } from './histogram.js';
import type { CollectResult, Command, ConnectResult, TickReport, WorkerStats } from './loadgenProtocol.js';
import { sleep } from './scenarioKit.js';
import { WorkerProcess } from './workerProcess.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'loadgenWorker.ts');

export interface LoadgenOptions {
  /** Clients this load generator will hold at most; sets the number of workers. */
  maxClients: number;
  /** Clients per worker process at most. Default 15,000. */
  perWorker?: number;
  app: string;
  kid: string;
  privateJwk: JWK;
  /** Clients per source address. Default 1,000 (an address has ~28k ephemeral ports, but bind() slows down as they fill). */
  perAddress?: number;
  /** First source address is 127.0.0.<firstAddress>. Default 2. */
  firstAddress?: number;
}

/** What the workers collected, summed, with their histograms decoded and merged. */
export type Collected = Omit<CollectResult, 'histogram'> & { histogram: LatencyHistogram };

export interface Loadgen {
  workers: number;
  pids: number[];
  /** Opens `count` clients for users `${userPrefix}<i>`, spread evenly over the workers. */
  connect(spec: {
    userPrefix: string;
    count: number;
    urls: string[];
    concurrency?: number;
    timeoutMs?: number;
  }): Promise<ConnectResult & { perSecond: number }>;
  record(label: string): Promise<void>;
  /** Distinct deliveries so far in the current recording. */
  peek(): Promise<{ unique: number; lastReceiptAt: number }>;
  collect(): Promise<Collected>;
  /** Merged per-second latency histograms of a recording, by label. */
  ticks(label: string): LatencyHistogram[];
  /** Closes `fraction` of the open clients from the client side (TCP reset); returns their users. */
  drop(fraction: number): Promise<string[]>;
  /** The users whose clients of `url` lost their socket (the server was killed); they stay away until `reconnect`. */
  orphans(url: string): Promise<string[]>;
  reconnect(opts?: { concurrency?: number; timeoutMs?: number; urls?: string[] }): Promise<ConnectResult>;
  stats(): Promise<WorkerStats>;
  close(): Promise<void>;
}

function mergeConnect(parts: ConnectResult[], ms: number): ConnectResult {
  const errors: Record<string, number> = {};
  const retried: Record<string, number> = {};
  for (const p of parts) {
    for (const [k, v] of Object.entries(p.errors)) errors[k] = (errors[k] ?? 0) + v;
    for (const [k, v] of Object.entries(p.retried)) retried[k] = (retried[k] ?? 0) + v;
  }
  return { ok: parts.reduce((a, p) => a + p.ok, 0), failed: parts.reduce((a, p) => a + p.failed, 0), ms, errors, retried };
}

export async function startLoadgen(opts: LoadgenOptions): Promise<Loadgen> {
  const perWorker = opts.perWorker ?? 15_000;
  // Few sockets per source address: the kernel's bind() of an ephemeral port slows down with
  // the sockets already bound to the address (15,000 connects: 4.5 s at 10,000 per address,
  // 0.8 s at 1,000); at 10,000 a reconnect storm spent 87% of the workers' time in bind().
  const perAddress = opts.perAddress ?? 1000;
  const first = opts.firstAddress ?? 2;
  const n = Math.max(1, Math.ceil(opts.maxClients / perWorker));
  const addressCount = Math.min(250 - first, Math.max(1, Math.ceil(opts.maxClients / perAddress) + 1));
  const addresses = Array.from({ length: addressCount }, (_, i) => `127.0.0.${first + i}`);
  const ticks = new Map<string, LatencyHistogram[]>();
  const onTick = (label: string, second: number, encoded: string) => {
    let list = ticks.get(label);
    if (!list) ticks.set(label, (list = []));
    (list[second] ??= new LatencyHistogram()).add(LatencyHistogram.decode(encoded));
  };
  const workers = Array.from(
    { length: n },
    () =>
      new WorkerProcess(
        WORKER,
        (m) => m.type === 'tick' && onTick((m as unknown as TickReport).label, (m as unknown as TickReport).second, (m as unknown as TickReport).histogram),
      ),
  );
  await Promise.all(workers.map((w) => w.call({ cmd: 'init', app: opts.app, kid: opts.kid, privateJwk: opts.privateJwk, addresses, perAddress })));
  let nextIndex = 0;
  const all = <T>(cmd: Command) => Promise.all(workers.map((w) => w.call<T>(cmd)));

  return {
    workers: n,
    pids: workers.map((w) => w.pid),
    async connect({ userPrefix, count, urls, concurrency = 200, timeoutMs = 30_000 }) {
      const started = performance.now();
      const share = Math.ceil(count / n);
      const from = nextIndex;
      nextIndex += count;
      const parts = await Promise.all(
        workers.map((w, i) => {
          const c = Math.max(0, Math.min(share, count - i * share));
          return c === 0
            ? { ok: 0, failed: 0, ms: 0, errors: {}, retried: {} }
            : w.call<ConnectResult>({
                cmd: 'connect',
                range: { userPrefix, from: from + i * share, count: c, urls },
                concurrency: Math.ceil(concurrency / n),
                timeoutMs,
              });
        }),
      );
      const ms = performance.now() - started;
      const merged = mergeConnect(parts, ms);
      return { ...merged, perSecond: merged.ok / (ms / 1000) };
    },
    async record(label) {
      ticks.delete(label);
      await all({ cmd: 'record', label });
    },
    async peek() {
      const parts = await all<{ unique: number; lastReceiptAt: number }>({ cmd: 'peek' });
      return { unique: parts.reduce((a, p) => a + p.unique, 0), lastReceiptAt: Math.max(...parts.map((p) => p.lastReceiptAt)) };
    },
    async collect() {
      const parts = await all<CollectResult>({ cmd: 'collect' });
      const histogram = new LatencyHistogram();
      const perSecond: number[] = [];
      for (const p of parts) {
        histogram.add(LatencyHistogram.decode(p.histogram));
        p.perSecond.forEach((v, i) => (perSecond[i] = (perSecond[i] ?? 0) + v));
      }
      return {
        histogram,
        unique: parts.reduce((a, p) => a + p.unique, 0),
        duplicates: parts.reduce((a, p) => a + p.duplicates, 0),
        foreign: parts.reduce((a, p) => a + p.foreign, 0),
        acksSent: parts.reduce((a, p) => a + p.acksSent, 0),
        perSecond: Array.from(perSecond, (v) => v ?? 0),
        lastReceiptAt: Math.max(...parts.map((p) => p.lastReceiptAt)),
      };
    },
    ticks: (label) => Array.from(ticks.get(label) ?? [], (h) => h ?? new LatencyHistogram()),
    async drop(fraction) {
      const parts = await all<{ users: string[] }>({ cmd: 'drop', fraction });
      return parts.flatMap((p) => p.users);
    },
    async orphans(url) {
      const parts = await all<{ users: string[] }>({ cmd: 'orphans', url });
      return parts.flatMap((p) => p.users);
    },
    async reconnect({ concurrency = 1000, timeoutMs = 30_000, urls } = {}) {
      const started = performance.now();
      const parts = await all<ConnectResult>({ cmd: 'reconnect', concurrency: Math.ceil(concurrency / n), timeoutMs, ...(urls ? { urls } : {}) });
      return mergeConnect(parts, performance.now() - started);
    },
    async stats() {
      const parts = await all<WorkerStats>({ cmd: 'stats' });
      const closeCodes: Record<string, number> = {};
      for (const p of parts) for (const [k, v] of Object.entries(p.closeCodes)) closeCodes[k] = (closeCodes[k] ?? 0) + v;
      return {
        open: parts.reduce((a, p) => a + p.open, 0),
        connecting: parts.reduce((a, p) => a + p.connecting, 0),
        closedUnexpectedly: parts.reduce((a, p) => a + p.closedUnexpectedly, 0),
        closeCodes,
        rssBytes: parts.reduce((a, p) => a + p.rssBytes, 0),
      };
    },
    async close() {
      await Promise.all(workers.map((w) => w.call({ cmd: 'close' }).catch(() => undefined)));
      await Promise.race([Promise.all(workers.map((w) => w.exited)), sleep(5000)]);
      for (const w of workers) if (w.proc.exitCode === null) w.proc.kill('SIGKILL');
    },
  };
}
