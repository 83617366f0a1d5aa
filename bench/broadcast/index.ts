/**
 * broadcast: N connected clients over P pushers; one transient `to: all`
 * message submitted over HTTP, repeated; time from submission until 50%,
 * 99% and 100% of the clients have it, the first receipt (lead time before
 * any socket is written), deliveries/s, and where the lead time goes per hop
 * (from the message's trace record: collector -> dispatcher -> pusher write).
 *
 * Next to it, in the same run, the raw-write limit for the same N (the limit
 * scenario's bare ws server writing one pre-built frame to each raw socket,
 * its own clients): one raw broadcast after each of ours (before it on odd
 * repeats), so the pair sees the same load; the ratio is read pair by pair.
 * Both sides' clients run in the same number of processes.
 *
 *   npm run bench -- broadcast [--sizes 16000x1,32000x2,100000x6] (the limit scenario's bare ws uses 16,000; quick 8,000) [--repeats 3]
 *     [--raw off] (no raw-limit comparison; sizes above 16,000 clients have none)
 */
import path from 'node:path';
import { Redis } from 'ioredis';
import { writeLineChart } from '../lib/chart.js';
import { startBenchStack, type BenchStack } from '../lib/benchStack.js';
import type { LatencySummary } from '../lib/histogram.js';
import { startLoadgen } from '../lib/loadgen.js';
import { nowMs } from '../lib/loadgenProtocol.js';
import { medianBy, num, quiesce, round, settle, sleep, target, profileEnv } from '../lib/scenarioKit.js';
import type { Scenario, TargetCheck } from '../lib/types.js';
import { RAW_LIMIT_MAX_CLIENTS, rawClientProcesses, startRawLimit } from './rawLimit.js';

interface Shot {
  clients: number;
  pushers: number;
  received: number;
  latency: LatencySummary;
  deliveriesPerSecond: number;
  /** Per-hop times from the trace record, ms after submission. */
  hops?: { dispatcherForwardedMs?: number; firstWriteMs?: number };
  /** The raw-write limit's broadcast next to this one (same N, same load), and ours against it. */
  raw?: { ms100: number; deliveriesPerSecond: number; ratio: number };
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

async function oneSize(o: Parameters<Scenario>[0], clients: number, pushers: number, repeats: number, compareRaw: boolean): Promise<Shot[]> {
  const raw = compareRaw && clients <= RAW_LIMIT_MAX_CLIENTS ? await startRawLimit(clients, o.log) : undefined;
  if (compareRaw && !raw) o.log(`broadcast: no raw-limit comparison above ${RAW_LIMIT_MAX_CLIENTS} clients (one bare ws process)`);
  const b = await startBenchStack({ env: profileEnv(o), logsDir: path.join(o.outDir, 'logs', `broadcast-${clients}x${pushers}`), pushers, log: o.log });
  // With a raw-limit comparison, our clients are spread over as many processes as its clients
  // (on two cores one receiving process is itself the bottleneck of a broadcast to 8,000).
  const lg = await startLoadgen({
    maxClients: clients,
    ...(raw ? { perWorker: Math.ceil(clients / rawClientProcesses(clients)) } : {}),
    app: b.stack.app,
    ...(await b.signingKey()),
  });
  const shots: Shot[] = [];
  try {
    const c = await lg.connect({ userPrefix: 'b', count: clients, urls: b.pushers.map((p) => p.wsUrl), concurrency: 300 });
    // Connecting leaves work behind on the pushers (routes, presence, resume reads); a broadcast
    // sent into that backlog measures the backlog, so wait until it is done.
    const settleStarted = Date.now();
    await quiesce(
      b.pushers.map((p) => p.pid),
      { timeoutMs: o.quick ? 20_000 : 60_000 },
    );
    o.log(
      `broadcast: ${c.ok}/${clients} clients on ${pushers} pusher(s) in ${round(c.ms / 1000)} s, settled ${round((Date.now() - settleStarted) / 1000)} s later${c.failed ? ` (${JSON.stringify(c.errors)})` : ''}`,
    );
    const rawShot = async () => {
      if (!raw) return undefined;
      const r = await raw.broadcast();
      await sleep(500);
      return r.ms100 === null ? undefined : { ms100: r.ms100, deliveriesPerSecond: Math.round(r.received / (r.ms100 / 1000)) };
    };
    for (let i = 0; i <= repeats; i++) {
      // Alternate which goes first, so neither always runs on the quieter side of the pair.
      const rawBefore = i % 2 === 1 ? await rawShot() : undefined;
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
      const hops = i === 0 ? undefined : await hopsOf(b, body.id, t);
      await sleep(500);
      const r = rawBefore ?? (await rawShot());
      // The first one warms up every path (JIT, connections) and is not reported.
      if (i === 0) o.log(`  warm-up (not reported) ${got.unique}/${c.ok}: first ${latency.min} ms, 50% ${latency.p50} ms, 100% ${latency.max} ms`);
      else {
        const deliveriesPerSecond = Math.round(got.unique / (latency.max / 1000));
        const shot: Shot = { clients: c.ok, pushers, received: got.unique, latency, deliveriesPerSecond, ...(hops ? { hops } : {}) };
        if (r) shot.raw = { ...r, ratio: round(deliveriesPerSecond / r.deliveriesPerSecond, 2) };
        shots.push(shot);
        o.log(
          `  ${got.unique}/${c.ok}: first ${latency.min} ms, 50% ${latency.p50} ms, 99% ${latency.p99} ms, 100% ${latency.max} ms; hops ${JSON.stringify(shot.hops)}` +
            (shot.raw ? `; raw limit ${shot.raw.ms100} ms = ${shot.raw.deliveriesPerSecond}/s, ours ${shot.raw.ratio}x` : ''),
        );
      }
    }
  } finally {
    await lg.close();
    await b.stop();
    await raw?.close();
  }
  return shots;
}

/** The median; of an even count, the worse of the middle two (the upper by `by`: never flattering). */
const median = <T>(xs: T[], by: (x: T) => number): T => medianBy(xs, by)!;

export const run: Scenario = async (o) => {
  const sizesArg = o.args.sizes;
  const sizes = typeof sizesArg === 'string' ? parseSizes(sizesArg) : o.quick ? parseSizes('4000x1,8000x2') : parseSizes('16000x1,32000x2,100000x6');
  const repeats = num(o, 'repeats', 2, 3);
  const compareRaw = o.args.raw !== 'off' && o.args.raw !== 'false';
  const options = { sizes, repeats, persistent: false, submit: 'HTTP to: all', compareRaw, coalesce: process.env.PUSHER_COALESCE ?? 'on' };
  const all: Shot[][] = [];
  for (const s of sizes) all.push(await oneSize(o, s.clients, s.pushers, repeats, compareRaw));

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
  for (const shots of all) {
    const paired = shots.filter((s) => s.raw);
    if (paired.length === 0) continue;
    const m = median(paired, (s) => -s.raw!.ratio); // of an even count, the lower middle ratio
    summary.push(
      `${m.clients} clients over ${m.pushers} pusher(s) against the raw-write limit for the same N, alternated in this run: ours/raw ${paired.map((s) => `${s.deliveriesPerSecond}/${s.raw!.deliveriesPerSecond}`).join(', ')} deliveries/s = ${paired.map((s) => s.raw!.ratio).join(', ')}x; median ${m.raw!.ratio}x (target >= 0.8x)`,
    );
    targets.push(
      target(
        `broadcast deliveries/s against the bare ws raw-write limit (${m.clients} clients, same run)`,
        '>= 0.8x',
        `${m.raw!.ratio}x (median of ${paired.length} pairs)`,
        m.raw!.ratio >= 0.8,
      ),
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
  summary.push(
    `frame coalescing (PUSHER_COALESCE, ${process.env.PUSHER_COALESCE ?? 'on'} in this run): a broadcast is one write per socket either way; its lift on bursts is measured by the limit scenario (burst off/on through the pusher's write path)`,
  );
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
