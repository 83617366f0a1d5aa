/**
 * The systems the peers scenario compares, behind one interface: how to start
 * one on the shared machine, where its clients connect, which processes hold
 * the connections (for memory), and its native publish API. The clients and
 * the publisher (loadgen.ts, publisher.ts) are the same code for every target;
 * only the wire protocol differs.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildProcess } from 'node:child_process';
import { startStack, type TestStack } from '../../test/support/stack.js';
import { freePort } from '../../test/support/services.js';
import { stack as infra } from '../../test/support/env.js';
import { forkTs, spawnGroup, stopGroup, trackPids, untrackPids } from '../lib/procs.js';
import { sleep } from '../lib/scenarioKit.js';
import { installCentrifugo, peersDir } from './installCentrifugo.js';
import type { TargetKind } from './protocol.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface PeerTarget {
  name: string;
  kind: TargetKind;
  /** One line on how it is set up, for the report. */
  describe: string;
  start(log: (l: string) => void): Promise<void>;
  /** One client URL per server process; clients are spread round robin. */
  wsEndpoints(): string[];
  /** Processes that hold the connections (their RSS, with descendants, is the memory figure). */
  serverPids(): number[];
  /** Processes by role, for the CPU each uses during saturation. */
  cpuRoles(): Record<string, number[]>;
  /** Heap in use by the server processes, where the target reports it. */
  heapBytes(): Promise<number | undefined>;
  /** Extra fields the load generator needs to connect (token service, secret). */
  connectExtra(): { authUrl?: string; apiKey?: string; hmacSecret?: string };
  /** Native publish API: unicast URLs (round robin), broadcast URL, headers. */
  publishApi(): { unicast: string[]; broadcast: string; headers: Record<string, string> };
  stop(): Promise<void>;
}

async function waitHttp(url: string, timeoutMs: number, proc?: ChildProcess, output?: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (proc && proc.exitCode !== null) throw new Error(`${url}: process exited with ${proc.exitCode}: ${output?.() ?? ''}`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      if (res.ok) return;
    } catch {
      /* not up yet */
    }
    await sleep(100);
  }
  throw new Error(`${url} not ready within ${timeoutMs} ms: ${output?.() ?? ''}`);
}

function capture(proc: ChildProcess): () => string {
  let out = '';
  const take = (d: Buffer) => {
    out = (out + d.toString()).slice(-4000);
  };
  proc.stdout?.on('data', take);
  proc.stderr?.on('data', take);
  return () => out;
}

const servicePids = (s: TestStack) => [s.auth, s.collector, ...s.dispatchers, s.admin, ...s.pushers].map((x) => x.proc.pid!);

/** Our pipeline: auth, collector, one dispatcher, the admin service and two pushers, isolated on the shared infra. */
export function oursTarget(pushers = 2): PeerTarget {
  let s: TestStack | undefined;
  return {
    name: 'ours',
    kind: 'ours',
    describe: `our pipeline (auth, collector, 1 dispatcher, admin, ${pushers} pushers; heartbeat 25 s), transient unicast via POST /v1/messages, broadcast via {to:{all:true}}`,
    async start() {
      s = await startStack({ pushers, dispatchers: 1, env: { LOG_LEVEL: 'warn', PUSHER_HEARTBEAT_MS: '25000' } });
      trackPids(servicePids(s));
    },
    wsEndpoints: () => s!.pushers.map((p) => p.url.replace('http', 'ws') + '/v1/ws'),
    serverPids: () => s!.pushers.map((p) => p.proc.pid!),
    cpuRoles: () => ({
      collector: [s!.collector.proc.pid!],
      dispatcher: s!.dispatchers.map((d) => d.proc.pid!),
      pushers: s!.pushers.map((p) => p.proc.pid!),
      auth: [s!.auth.proc.pid!],
    }),
    async heapBytes() {
      let sum = 0;
      for (const p of s!.pushers) {
        const text = await (await fetch(`${p.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
        const m = /^push_nodejs_heap_size_used_bytes(?:\{[^}]*\})? (\S+)$/m.exec(text);
        if (!m) return undefined;
        sum += Number(m[1]);
      }
      return sum;
    },
    connectExtra: () => ({ authUrl: s!.auth.url, apiKey: s!.apiKey }),
    publishApi: () => ({
      unicast: [`${s!.collector.url}/v1/messages`],
      broadcast: `${s!.collector.url}/v1/messages`,
      headers: { authorization: `Bearer ${s!.apiKey}` },
    }),
    async stop() {
      if (!s) return;
      await s.stop();
      untrackPids(servicePids(s));
    },
  };
}

/** Socket.IO 4.8 with the Redis adapter: two server processes (socketioServer.ts). */
export function socketioTarget(processes = 2): PeerTarget {
  const procs: Array<{ proc: ChildProcess; url: string; output: () => string }> = [];
  const key = `sio-bench-${randomBytes(4).toString('hex')}`;
  return {
    name: 'socket.io',
    kind: 'socketio',
    describe: `Socket.IO 4.8 + @socket.io/redis-adapter, ${processes} processes, websocket transport only, no auth; publish via an HTTP endpoint on the server calling io.to(user).emit / io.emit`,
    async start() {
      for (let i = 0; i < processes; i++) {
        const port = await freePort();
        const proc = forkTs(path.join(here, 'socketioServer.ts'), [], {
          env: { ...process.env, PORT: String(port), REDIS_URL: infra.redisUrl, ADAPTER_KEY: key },
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        });
        procs.push({ proc, url: `http://127.0.0.1:${port}`, output: capture(proc) });
      }
      await Promise.all(procs.map((p) => waitHttp(`${p.url}/stats`, 30_000, p.proc, p.output)));
    },
    wsEndpoints: () => procs.map((p) => p.url),
    serverPids: () => procs.map((p) => p.proc.pid!),
    cpuRoles: () => ({ servers: procs.map((p) => p.proc.pid!) }),
    async heapBytes() {
      let sum = 0;
      for (const p of procs) sum += ((await (await fetch(`${p.url}/stats`)).json()) as { memory: NodeJS.MemoryUsage }).memory.heapUsed;
      return sum;
    },
    connectExtra: () => ({}),
    publishApi: () => ({ unicast: procs.map((p) => `${p.url}/publish`), broadcast: `${procs[0]!.url}/broadcast`, headers: {} }),
    async stop() {
      await Promise.all(procs.map((p) => stopGroup(p.proc, 'SIGTERM', 3000)));
    },
  };
}

/**
 * Centrifugo v5 (Go): two processes with the Redis engine on the shared Redis
 * (its scale-out setup, like Socket.IO's adapter), loopback only, HS256
 * connection tokens with server-side channels, HTTP API with a key.
 */
export function centrifugoTarget(processes = 2): PeerTarget {
  const procs: Array<{ proc: ChildProcess; port: number; output: () => string }> = [];
  const secret = randomBytes(32).toString('hex');
  const apiKey = randomBytes(16).toString('hex');
  const id = `${process.pid}-${Date.now().toString(36)}`;
  const dir = path.join(peersDir, `run-${id}`);
  const base = (p: { port: number }) => `http://127.0.0.1:${p.port}`;
  return {
    name: 'centrifugo',
    kind: 'centrifugo',
    describe: `Centrifugo v5.4.9, ${processes} processes (Go), Redis engine, HS256 connection tokens with server-side channels u-<user> and all; publish via HTTP API /api/publish`,
    async start(log) {
      const bin = await installCentrifugo(log);
      mkdirSync(dir, { recursive: true });
      for (let i = 0; i < processes; i++) {
        const port = await freePort();
        const config = {
          address: '127.0.0.1',
          port,
          token_hmac_secret_key: secret,
          api_key: apiKey,
          log_level: 'error',
          health: true,
          engine: 'redis',
          redis_address: infra.redisUrl,
          redis_prefix: `centrifugo-bench-${id}`,
        };
        const file = path.join(dir, `config-${i}.json`);
        writeFileSync(file, JSON.stringify(config, null, 2));
        const proc = spawnGroup(bin, ['--config', file], { cwd: dir });
        procs.push({ proc, port, output: capture(proc) });
      }
      await Promise.all(procs.map((p) => waitHttp(`${base(p)}/health`, 30_000, p.proc, p.output)));
    },
    wsEndpoints: () => procs.map((p) => `ws://127.0.0.1:${p.port}/connection/websocket`),
    serverPids: () => procs.map((p) => p.proc.pid!),
    cpuRoles: () => ({ servers: procs.map((p) => p.proc.pid!) }),
    heapBytes: async () => undefined,
    connectExtra: () => ({ hmacSecret: secret }),
    publishApi: () => ({ unicast: procs.map((p) => `${base(p)}/api/publish`), broadcast: `${base(procs[0]!)}/api/publish`, headers: { 'x-api-key': apiKey } }),
    async stop() {
      await Promise.all(procs.map((p) => stopGroup(p.proc, 'SIGTERM', 3000)));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
