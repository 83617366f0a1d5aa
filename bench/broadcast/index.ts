/**
 * broadcast: N connected clients over P pushers; one transient `to: all`
 * message submitted over HTTP, repeated; time from submission until 50%,
 * 99% and 100% of the clients have it, the first receipt (lead time before
 * any socket is written), deliveries/s, and where the lead time goes per hop
 * (from the message's trace record: collector -> dispatcher -> pusher write).
 *
 *   npm run bench -- broadcast [--sizes 16000x1,32000x2,100000x6] (the limit scenario's bare ws uses 16,000; quick 8,000) [--repeats 3]
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import { writeLineChart } from '../lib/chart.js';
import { startBenchStack, type BenchStack } from '../lib/benchStack.js';
import type { LatencySummary } from '../lib/histogram.js';
import { startLoadgen } from '../lib/loadgen.js';
import { nowMs } from '../lib/loadgenProtocol.js';
import { num, quiesce, round, settle, sleep, target, profileEnv } from '../lib/scenarioKit.js';
import type { Scenario, TargetCheck } from '../lib/types.js';

interface Shot {
  clients: number;
  pushers: number;
  received: number;
  latency: LatencySummary;
  deliveriesPerSecond: number;
  /** Per-hop times from the trace record, ms after submission. */
  hops?: { dispatcherForwardedMs?: number; firstWriteMs?: number };
}

function parseSizes(v: string): { clients: number; pushers: number }[] {
  return v.split(',').map((s) => {
    const m = /^(\d+)x(\d+)$/.exec(s.trim());
    if (!m) throw new Error(`--sizes takes <clients>x<pushers>[,...], e.g. 15000x1,30000x2; got "${s}"`);
    return { clients: Number(m[1]), pushers: Number(m[2]) };
  });
}

/** Per-hop times of one message from its trace record (the dispatcher creates it, pushers annotate writes). */
async function hopsOf(b: BenchStack, messageId: string, submittedAt: number): Promise<Shot['hops']> {
  const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { keyPrefix: b.stack.env.REDIS_KEY_PREFIX, lazyConnect: true });
  try {
    await redis.connect();
    await sleep(300); // trace writes are flushed every 100 ms
    const h = await redis.hgetall(`push:trace:${messageId}`);
    const ats = (prefix: string) =>
      Object.entries(h)
        .filter(([k]) => k.startsWith(prefix))
        .map(([, v]) => (JSON.parse(v) as { at: number }).at);
    const forwarded = ats('r:');
    const writes = ats('w:');
    return {
      ...(forwarded.length ? { dispatcherForwardedMs: Math.min(...forwarded) - submittedAt } : {}),
      ...(writes.length ? { firstWriteMs: Math.min(...writes) - submittedAt } : {}),
    };
  } catch {
    return undefined;
  } finally {
    redis.disconnect();
  }
}

async function oneSize(o: Parameters<Scenario>[0], clients: number, pushers: number, repeats: number): Promise<Shot[]> {
  const b = await startBenchStack({ env: profileEnv(o), logsDir: path.join(o.outDir, 'logs', `broadcast-${clients}x${pushers}`), pushers, log: o.log });
  const lg = await startLoadgen({ maxClients: clients, app: b.stack.app, ...(await b.signingKey()) });
  const shots: Shot[] = [];
  try {
    const c = await lg.connect({ userPrefix: 'b', count: clients, urls: b.pushers.map((p) => p.wsUrl), concurrency: 300 });
    // Connecting leaves work behind on the pushers (routes, presence, resume reads); a broadcast
    // sent into that backlog measures the backlog, so wait until it is done.
    const settleStarted = Date.now();
    await quiesce(b.pushers.map((p) => p.pid), { timeoutMs: o.quick ? 20_000 : 60_000 });
    o.log(`broadcast: ${c.ok}/${clients} clients on ${pushers} pusher(s) in ${round(c.ms / 1000)} s, settled ${round((Date.now() - settleStarted) / 1000)} s later${c.failed ? ` (${JSON.stringify(c.errors)})` : ''}`);
    for (let i = 0; i <= repeats; i++) {
      await lg.record(`broadcast-${clients}x${pushers}-${i}`);
      const t = nowMs();
      const res = await fetch(`${b.stack.collector.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${b.stack.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: { all: true }, payload: { t, k: i }, persistent: false }),
      });
      const body = (await res.json()) as { id?: string };
      if (res.status !== 202 || !body.id) throw new Error(`broadcast submit failed: ${res.status} ${JSON.stringify(body)}`);
      await settle(() => lg.peek(), c.ok, { quietMs: 5000, maxMs: 30_000 });
      const got = await lg.collect();
      const latency = got.histogram.summary();
      // The first one warms up every path (JIT, connections) and is not reported.
      if (i === 0) o.log(`  warm-up (not reported) ${got.unique}/${c.ok}: first ${latency.min} ms, 50% ${latency.p50} ms, 100% ${latency.max} ms`);
      else {
        const shot: Shot = { clients: c.ok, pushers, received: got.unique, latency, deliveriesPerSecond: Math.round(got.unique / (latency.max / 1000)), hops: await hopsOf(b, body.id, t) };
        shots.push(shot);
        o.log(`  ${got.unique}/${c.ok}: first ${latency.min} ms, 50% ${latency.p50} ms, 99% ${latency.p99} ms, 100% ${latency.max} ms; hops ${JSON.stringify(shot.hops)}`);
      }
      await sleep(500);
    }
  } finally {
    await lg.close();
    await b.stop();
  }
  return shots;
}

/** The median; of an even count, the worse of the middle two (never flattering). */
const median = <T>(xs: T[], by: (x: T) => number): T => [...xs].sort((a, b) => by(a) - by(b))[Math.ceil((xs.length - 1) / 2)]!;

export const run: Scenario = async (o) => {
  const sizesArg = o.args.sizes;
  const sizes = typeof sizesArg === 'string' ? parseSizes(sizesArg) : o.quick ? parseSizes('4000x1,8000x2') : parseSizes('16000x1,32000x2,100000x6');
  const repeats = num(o, 'repeats', 2, 3);
  const options = { sizes, repeats, persistent: false, submit: 'HTTP to: all' };
  const all: Shot[][] = [];
  for (const s of sizes) all.push(await oneSize(o, s.clients, s.pushers, repeats));

  const summary: string[] = [];
  const targets: TargetCheck[] = [];
  const medians = all.filter((shots) => shots.length > 0).map((shots) => median(shots, (s) => s.latency.max));
  for (const m of medians) {
    summary.push(
      `${m.clients} clients over ${m.pushers} pusher(s), median of ${repeats} (worse middle when even): ${m.received}/${m.clients} received; first ${m.latency.min} ms, 50% ${m.latency.p50} ms, 99% ${m.latency.p99} ms, 100% ${m.latency.max} ms; ${m.deliveriesPerSecond} deliveries/s` +
        (m.hops?.dispatcherForwardedMs !== undefined ? `; the dispatcher forwarded it ${round(m.hops.dispatcherForwardedMs)} ms after submission` : '') +
        (m.hops?.firstWriteMs !== undefined ? `, first socket write at ${round(m.hops.firstWriteMs)} ms` : ''),
    );
  }
  const biggest = medians.at(-1);
  if (biggest) {
    const all100 = biggest.received === biggest.clients;
    targets.push(
      target(
        'broadcast reach (100,000 clients within 2 s)',
        '100% of 100,000 within 2000 ms',
        `${biggest.received}/${biggest.clients} in ${biggest.latency.max} ms${biggest.clients < 100_000 ? ' (not measured at 100,000)' : ''}`,
        biggest.clients >= 100_000 && all100 && biggest.latency.max <= 2000,
      ),
    );
  }
  summary.push('frame coalescing (several messages per write when messages burst): not implemented; not measured');
  const charts = ['broadcast-reach.svg'];
  writeLineChart(path.join(o.outDir, 'broadcast-reach.svg'), {
    title: 'broadcast: share of clients reached against time since submission (median run)',
    xLabel: 'ms since submission',
    yLabel: '% of clients reached',
    series: medians.map((m) => ({
      name: `${m.clients}x${m.pushers}`,
      points: [
        [0, 0],
        [m.latency.min, 0],
        [m.latency.p50, 50],
        [m.latency.p90, 90],
        [m.latency.p99, 99],
        [m.latency.max, (100 * m.received) / Math.max(1, m.clients)],
      ] as [number, number][],
    })),
  });
  return { scenario: 'broadcast', options, summary, metrics: { runs: all }, charts, targets };
};
