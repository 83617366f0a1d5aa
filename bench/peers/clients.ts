/**
 * Parent side of the load generators: N clients spread over several child
 * processes (each far below the per-process open-file limit) and several
 * loopback source addresses, and a publisher child.
 */
import type { ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LatencyHistogram } from '../lib/histogram.js';
import { forkTs, nextMessage, stopGroup } from '../lib/procs.js';
import { sleep } from '../lib/scenarioKit.js';
import type { ConnectCmd, ConnectedEv, PublishCmd, PublishedEv, StatsEv, TargetKind } from './protocol.js';

const here = path.dirname(fileURLToPath(import.meta.url));

/** Clients per load-generator process (the open-file limit per process is 20,000 here). */
export const CLIENTS_PER_PROCESS = 8000;
/** Source addresses 127.0.0.2-127.0.0.9: each adds its own range of ephemeral ports per server address. */
export const LOCAL_ADDRESSES = Array.from({ length: 8 }, (_, i) => `127.0.0.${i + 2}`);

export interface Collected {
  received: number;
  hist: LatencyHistogram;
  arrivals: number[];
  /** 100 ms bucket -> [count, latency sum, latency max]. */
  timeline: Map<number, [number, number, number]>;
  firstAt: number;
  lastAt: number;
  dropped: number;
}

export class ClientPool {
  private constructor(private readonly procs: ChildProcess[]) {}

  static async start(n: number, minProcesses = 2): Promise<ClientPool> {
    const count = Math.max(minProcesses, Math.ceil(n / CLIENTS_PER_PROCESS));
    const procs = Array.from({ length: count }, () => forkTs(path.join(here, 'loadgen.ts')));
    const pool = new ClientPool(procs);
    try {
      await Promise.all(procs.map((p) => nextMessage(p, (m) => m.ev === 'ready', 30_000, 'load generator start')));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  get processes(): number {
    return this.procs.length;
  }

  get pids(): number[] {
    return this.procs.map((p) => p.pid!);
  }

  /** Connects users u0..u(n-1), user i to endpoint i % endpoints, spread over the processes. */
  /**
   * Connects users u0..u(n-1), user i to endpoint i % endpoints, spread over the processes.
   * Tokens (ours) are fetched by every process first, so `ms` and `perSecond` are handshakes only.
   */
  async connect(
    opts: Omit<ConnectCmd, 'cmd' | 'clients' | 'localAddresses' | 'concurrency' | 'timeoutMs'> & {
      n: number;
      concurrency?: number;
      timeoutMs?: number;
      kind: TargetKind;
    },
  ): Promise<ConnectedEv & { perSecond: number; tokenMs: number }> {
    const { n, concurrency = 50, timeoutMs = 30_000, ...rest } = opts;
    const cmds = this.procs.map((_, k) => {
      const clients: Array<[string, number]> = [];
      for (let i = k; i < n; i += this.procs.length) clients.push([`u${i}`, i % rest.endpoints.length]);
      return { ...rest, clients, concurrency, localAddresses: LOCAL_ADDRESSES, timeoutMs };
    });
    const tt = performance.now();
    await Promise.all(this.procs.map((p, k) => (p.send({ cmd: 'prepare', ...cmds[k] }), nextMessage(p, (m) => m.ev === 'prepared', 20 * 60_000, 'tokens'))));
    const tokenMs = performance.now() - tt;
    const t0 = performance.now();
    const results = await Promise.all(
      this.procs.map((p, k) => {
        const cmd: ConnectCmd = { cmd: 'connect', ...cmds[k]! };
        p.send(cmd);
        return nextMessage<ConnectedEv>(p, (m) => m.ev === 'connected', 20 * 60_000, 'connections');
      }),
    );
    const ms = performance.now() - t0;
    const ok = results.reduce((s, r) => s + r.ok, 0);
    return {
      ev: 'connected',
      ok,
      failed: results.reduce((s, r) => s + r.failed, 0),
      failedIds: results.flatMap((r) => r.failedIds),
      firstError: results.find((r) => r.firstError)?.firstError,
      ms,
      perSecond: ok / (ms / 1000),
      tokenMs,
    };
  }

  /** Clears the counters; from now on clients count only payloads of publish run `run`. */
  async reset(run: number): Promise<void> {
    await Promise.all(this.procs.map((p) => (p.send({ cmd: 'reset', run }), nextMessage(p, (m) => m.ev === 'reset', 10_000, 'reset'))));
  }

  /** Unicast and broadcast messages received so far, summed. */
  async count(): Promise<{ received: number; broadcast: number; lastAt: number }> {
    const r = await Promise.all(
      this.procs.map(
        (p) => (p.send({ cmd: 'count' }), nextMessage<{ received: number; broadcast: number; lastAt: number }>(p, (m) => m.ev === 'count', 10_000, 'count')),
      ),
    );
    return { received: r.reduce((s, x) => s + x.received, 0), broadcast: r.reduce((s, x) => s + x.broadcast, 0), lastAt: Math.max(...r.map((x) => x.lastAt)) };
  }

  /** Polls until `done(count)` or no progress for `idleMs`, bounded by `timeoutMs`. */
  async waitFor(done: (c: { received: number; broadcast: number }) => boolean, { idleMs = 3000, timeoutMs = 30_000 } = {}): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = -1;
    let lastChange = Date.now();
    while (Date.now() < deadline) {
      const c = await this.count();
      if (done(c)) return;
      const v = c.received + c.broadcast;
      if (v !== last) {
        last = v;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > idleMs) return;
      await sleep(50);
    }
  }

  async collect(): Promise<Collected> {
    const stats = await Promise.all(this.procs.map((p) => (p.send({ cmd: 'collect' }), nextMessage<StatsEv>(p, (m) => m.ev === 'stats', 30_000, 'stats'))));
    const hist = new LatencyHistogram();
    const timeline = new Map<number, [number, number, number]>();
    for (const s of stats) {
      hist.add(LatencyHistogram.decode(s.hist));
      for (const [b, c, sum, max] of s.timeline) {
        const t = timeline.get(b);
        if (t) {
          t[0] += c;
          t[1] += sum;
          t[2] = Math.max(t[2], max);
        } else timeline.set(b, [c, sum, max]);
      }
    }
    const firsts = stats.map((s) => s.firstAt).filter((x) => x > 0);
    return {
      received: stats.reduce((s, x) => s + x.received, 0),
      hist,
      arrivals: stats.flatMap((s) => s.arrivals).sort((a, b) => a - b),
      timeline,
      firstAt: firsts.length ? Math.min(...firsts) : 0,
      lastAt: Math.max(0, ...stats.map((s) => s.lastAt)),
      dropped: stats.reduce((s, x) => s + x.dropped, 0),
    };
  }

  async close(): Promise<void> {
    for (const p of this.procs) if (p.connected) p.send({ cmd: 'close' });
    await Promise.all(this.procs.map((p) => stopGroup(p, 'SIGTERM', 3000)));
  }
}

/** A publisher child process. */
export class Publisher {
  private constructor(private readonly proc: ChildProcess) {}

  static async start(): Promise<Publisher> {
    const proc = forkTs(path.join(here, 'publisher.ts'));
    await nextMessage(proc, (m) => m.ev === 'ready', 30_000, 'publisher start');
    return new Publisher(proc);
  }

  get pid(): number {
    return this.proc.pid!;
  }

  async run(cmd: Omit<PublishCmd, 'cmd'>): Promise<PublishedEv> {
    this.proc.send({ cmd: 'run', ...cmd });
    return nextMessage<PublishedEv>(this.proc, (m) => m.ev === 'published', cmd.durationMs + 60_000, 'publish run');
  }

  async close(): Promise<void> {
    await stopGroup(this.proc, 'SIGTERM', 2000);
  }
}
