/**
 * peers: the same three measurements against our pipeline, Socket.IO (Redis
 * adapter) and Centrifugo, one after the other in the same run on the same
 * machine, with the same load generator and publisher code:
 *   1. memory per idle connection: RSS (and heap where reported) of the server
 *      processes before and after N connections;
 *   2. unicast: transient messages to random connected users over each
 *      target's native HTTP publish API, at a fixed offered rate and at
 *      saturation (a fixed number of requests in flight): delivered msgs/s,
 *      latency from submission (time in the payload) to receipt, lost;
 *   3. broadcast: one message to all N clients, time to 50/99/100%.
 * Ratios are ours / peer. Unicast is transient for every target because the
 * peers do not persist messages.
 *
 *   npm run bench -- peers [--quick] [--per-process 2000|15000] [--rate 500|2000] [--seconds 5]
 *     [--concurrency 64|64,256] [--broadcasts 2] [--targets ours,socketio,centrifugo]
 */
import os from 'node:os';
import path from 'node:path';
import { infraStatus, infraUp } from '../../infra/stack.js';
import { writeLineChart } from '../lib/chart.js';
import { formatLatency, type LatencySummary } from '../lib/histogram.js';
import { cpuSeconds, processTree, rssOfTrees } from '../lib/procs.js';
import { writeReport } from '../lib/results.js';
import { runStandalone } from '../lib/standalone.js';
import type { Scenario, ScenarioReport, TargetCheck } from '../lib/types.js';
import { ClientPool, Publisher, type Collected } from './clients.js';
import { centrifugoTarget, oursTarget, socketioTarget, type PeerTarget } from './targets.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const num = (v: unknown, d: number) => (v === undefined || v === true ? d : Number(v));
const kb = (bytes: number) => Math.round(bytes / 102.4) / 10;
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;

export interface UnicastResult {
  offeredRate?: number;
  sent: number;
  accepted: number;
  errors: number;
  skipped: number;
  received: number;
  lost: number;
  deliveredPerSec: number;
  latency: LatencySummary;
  firstError?: string;
}

export interface SaturationLevel extends UnicastResult {
  /** Requests in flight. */
  concurrency: number;
  /** CPU cores used per role (servers, shared infra, publisher, client processes) while publishing. */
  cores: Record<string, number>;
}

export interface BroadcastResult {
  clients: number;
  runs: Array<{ received: number; ms50: number; ms99: number; ms100: number | null; deliveriesPerSec: number | null }>;
  /** Median over runs. */
  ms99: number;
  ms100: number | null;
  deliveriesPerSec: number | null;
}

export interface TargetResult {
  name: string;
  describe: string;
  error?: string;
  clients?: number;
  connected?: number;
  connectFailed?: number;
  /** Handshakes per second (tokens fetched beforehand). */
  connectPerSec?: number;
  tokenSeconds?: number;
  connectFirstError?: string;
  serverProcesses?: number;
  rssBeforeMB?: number;
  rssAfterMB?: number;
  rssPerConnKB?: number;
  heapPerConnKB?: number | null;
  fixed?: UnicastResult;
  /** The saturation level that delivered most. */
  saturation?: SaturationLevel;
  saturationLevels?: SaturationLevel[];
  broadcast?: BroadcastResult;
  saturationTimeline?: Array<[number, number]>;
  /** Mean unicast latency per 500 ms window at the fixed rate. */
  fixedLatencyTimeline?: Array<[number, number]>;
  broadcastCdf?: Array<[number, number]>;
}

function unicastOf(
  pub: { sent: number; accepted: number; errors: number; skipped: number; startedAt: number; elapsedMs: number; firstError?: string },
  col: Collected,
  offeredRate?: number,
): UnicastResult {
  const spanMs = Math.max(pub.elapsedMs, col.lastAt - pub.startedAt);
  return {
    offeredRate,
    sent: pub.sent,
    accepted: pub.accepted,
    errors: pub.errors,
    skipped: pub.skipped,
    received: col.received,
    lost: Math.max(0, pub.accepted - col.received),
    deliveredPerSec: Math.round(col.received / (spanMs / 1000)),
    latency: col.hist.summary(),
    firstError: pub.firstError,
  };
}

/**
 * Over time, in 500 ms windows (x in seconds from `fromMs`): the delivery rate per second,
 * and the mean and max latency of the messages received in the window.
 */
function timeSeries(col: Collected, fromMs: number): { rate: Array<[number, number]>; meanMs: Array<[number, number]>; maxMs: Array<[number, number]> } {
  const out = { rate: [] as Array<[number, number]>, meanMs: [] as Array<[number, number]>, maxMs: [] as Array<[number, number]> };
  const buckets = [...col.timeline].sort((a, b) => a[0] - b[0]);
  for (let i = 0; i < buckets.length; i += 5) {
    const slice = buckets.slice(i, i + 5);
    const x = Math.max(0, round((slice[0]![0] * 100 - fromMs) / 1000, 1));
    const count = slice.reduce((s, b) => s + b[1][0], 0);
    out.rate.push([x, (count * 10) / slice.length]);
    out.meanMs.push([x, round(slice.reduce((s, b) => s + b[1][1], 0) / count)]);
    out.maxMs.push([x, round(Math.max(...slice.map((b) => b[1][2])))]);
  }
  return out;
}

async function measure(
  target: PeerTarget,
  cfg: { n: number; rate: number; phaseMs: number; warmupMs: number; concurrency: number[]; broadcasts: number },
  infraRoles: Record<string, number[]>,
  log: (l: string) => void,
): Promise<TargetResult> {
  const r: TargetResult = { name: target.name, describe: target.describe };
  let pool: ClientPool | undefined;
  let pub: Publisher | undefined;
  try {
    log(`peers/${target.name}: starting (${target.describe})`);
    await target.start(log);
    await sleep(2000);
    const pids = target.serverPids();
    r.serverProcesses = pids.length;
    const rssBefore = rssOfTrees(pids);
    const heapBefore = await target.heapBytes().catch(() => undefined);

    pool = await ClientPool.start(cfg.n);
    log(`peers/${target.name}: connecting ${cfg.n} clients from ${pool.processes} processes`);
    const conn = await pool.connect({ kind: target.kind, endpoints: target.wsEndpoints(), n: cfg.n, ...target.connectExtra() });
    Object.assign(r, {
      clients: cfg.n,
      connected: conn.ok,
      connectFailed: conn.failed,
      connectPerSec: Math.round(conn.perSecond),
      connectFirstError: conn.firstError,
    });
    r.tokenSeconds = round(conn.tokenMs / 1000);
    log(
      `peers/${target.name}: ${conn.ok} connected, ${conn.failed} failed in ${round(conn.ms / 1000)} s (${Math.round(conn.perSecond)}/s; tokens fetched before in ${r.tokenSeconds} s)${conn.firstError ? ` (first error: ${conn.firstError})` : ''}`,
    );
    if (conn.ok === 0) throw new Error(`no client connected: ${conn.firstError}`);
    await sleep(3000);
    const rssAfter = rssOfTrees(pids);
    const heapAfter = await target.heapBytes().catch(() => undefined);
    r.rssBeforeMB = round(rssBefore / 2 ** 20);
    r.rssAfterMB = round(rssAfter / 2 ** 20);
    r.rssPerConnKB = kb((rssAfter - rssBefore) / conn.ok);
    r.heapPerConnKB = heapBefore !== undefined && heapAfter !== undefined ? kb((heapAfter - heapBefore) / conn.ok) : null;
    log(`peers/${target.name}: ${r.rssPerConnKB} KB RSS${r.heapPerConnKB !== null ? `, ${r.heapPerConnKB} KB heap` : ''} per idle connection`);

    const failed = new Set(conn.failedIds);
    const users = Array.from({ length: cfg.n }, (_, i) => `u${i}`).filter((u) => !failed.has(u));
    const api = target.publishApi();
    pub = await Publisher.start();

    // Warm-up (not measured, same for every target): JIT, connection pools, first Kafka/Redis round trips.
    let runId = 1;
    await pool.reset(runId);
    await pub.run({
      run: runId,
      kind: target.kind,
      mode: 'rate',
      urls: api.unicast,
      headers: api.headers,
      users,
      rate: cfg.rate,
      durationMs: cfg.warmupMs,
      concurrency: 256,
    });
    await pool.reset(++runId);
    const fixed = await pub.run({
      run: runId,
      kind: target.kind,
      mode: 'rate',
      urls: api.unicast,
      headers: api.headers,
      users,
      rate: cfg.rate,
      durationMs: cfg.phaseMs,
      concurrency: 256,
    });
    await pool.waitFor((c) => c.received >= fixed.accepted, { idleMs: 3000, timeoutMs: 20_000 });
    const fixedCol = await pool.collect();
    r.fixed = unicastOf(fixed, fixedCol, cfg.rate);
    r.fixedLatencyTimeline = timeSeries(fixedCol, fixed.startedAt).meanMs;
    log(
      `peers/${target.name}: unicast at ${cfg.rate}/s: ${r.fixed.deliveredPerSec} delivered/s, ${formatLatency(r.fixed.latency)}, lost ${r.fixed.lost}, errors ${r.fixed.errors}, skipped ${r.fixed.skipped}`,
    );

    // Saturation: closed loop at each concurrency level; the level that delivers most is "saturation".
    r.saturationLevels = [];
    for (const concurrency of cfg.concurrency) {
      await pool.reset(++runId);
      const roles: Record<string, number[]> = { ...target.cpuRoles(), ...infraRoles, publisher: [pub.pid], clients: pool.pids };
      const cpu0 = cpuOfRoles(roles);
      const satT0 = performance.now();
      const sat = await pub.run({
        run: runId,
        kind: target.kind,
        mode: 'saturate',
        urls: api.unicast,
        headers: api.headers,
        users,
        rate: 0,
        durationMs: cfg.phaseMs,
        concurrency,
      });
      const cpu1 = cpuOfRoles(roles);
      const satSeconds = (performance.now() - satT0) / 1000;
      await pool.waitFor((c) => c.received >= sat.accepted, { idleMs: 3000, timeoutMs: 30_000 });
      const satCol = await pool.collect();
      const level: SaturationLevel = {
        ...unicastOf(sat, satCol),
        concurrency,
        cores: Object.fromEntries(Object.keys(roles).map((k) => [k, round((cpu1[k]! - cpu0[k]!) / satSeconds, 2)])),
      };
      r.saturationLevels.push(level);
      log(
        `peers/${target.name}: unicast at saturation (${concurrency} in flight): ${level.deliveredPerSec} delivered/s, ${formatLatency(level.latency)}, lost ${level.lost}, errors ${level.errors}; cores used: ${JSON.stringify(level.cores)}`,
      );
      if (!r.saturation || level.deliveredPerSec > r.saturation.deliveredPerSec) {
        r.saturation = level;
        r.saturationTimeline = timeSeries(satCol, sat.startedAt).rate;
      }
    }

    const runs: BroadcastResult['runs'] = [];
    for (let i = 0; i < cfg.broadcasts; i++) {
      await pool.reset(++runId);
      const b = await pub.run({
        run: runId,
        kind: target.kind,
        mode: 'broadcast',
        urls: [api.broadcast],
        headers: api.headers,
        users: [],
        rate: 0,
        durationMs: 0,
        concurrency: 1,
      });
      if (b.accepted !== 1) throw new Error(`broadcast refused: ${b.firstError}`);
      await pool.waitFor((c) => c.broadcast >= conn.ok, { idleMs: 3000, timeoutMs: 30_000 });
      const a = (await pool.collect()).arrivals;
      const at = (p: number) => a[Math.min(a.length - 1, Math.ceil(p * conn.ok) - 1)] ?? NaN;
      const ms100 = a.length >= conn.ok ? a[a.length - 1]! : null;
      runs.push({
        received: a.length,
        ms50: round(at(0.5)),
        ms99: round(at(0.99)),
        ms100: ms100 === null ? null : round(ms100),
        deliveriesPerSec: ms100 === null ? null : Math.round(a.length / (ms100 / 1000)),
      });
      if (i === cfg.broadcasts - 1) {
        const step = Math.max(1, Math.floor(a.length / 200));
        r.broadcastCdf = [
          [0, 0],
          ...a.flatMap((ms, j): Array<[number, number]> => (j % step === 0 || j === a.length - 1 ? [[round(ms), round(((j + 1) / conn.ok) * 100)]] : [])),
        ];
      }
      await sleep(500);
    }
    const med = <T>(xs: T[], key: (x: T) => number | null) => {
      const v = xs
        .map(key)
        .filter((x): x is number => x !== null)
        .sort((p, q) => p - q);
      return v.length === xs.length ? v[Math.floor(v.length / 2)]! : null;
    };
    r.broadcast = {
      clients: conn.ok,
      runs,
      ms99: med(runs, (x) => x.ms99) ?? NaN,
      ms100: med(runs, (x) => x.ms100),
      deliveriesPerSec: med(runs, (x) => x.deliveriesPerSec),
    };
    log(
      `peers/${target.name}: broadcast to ${conn.ok}: 99% ${r.broadcast.ms99} ms, 100% ${r.broadcast.ms100 ?? 'not reached'} ms, ${r.broadcast.deliveriesPerSec ?? '-'} deliveries/s (median of ${runs.length})`,
    );
  } catch (err) {
    r.error = err instanceof Error ? err.message : String(err);
    log(`peers/${target.name}: FAILED: ${r.error}`);
  } finally {
    await pub?.close().catch(() => undefined);
    await pool?.close().catch(() => undefined);
    await target.stop().catch((err) => log(`peers/${target.name}: stop failed: ${String(err)}`));
  }
  return r;
}

/** CPU seconds used so far by each role's processes (with their descendants). */
function cpuOfRoles(roles: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(roles).map(([k, pids]) => [k, pids.flatMap(processTree).reduce((s, p) => s + cpuSeconds(p), 0)]));
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);

export const run: Scenario = async (opts) => {
  const { quick, args, outDir, log } = opts;
  const perProcess = num(args['per-process'], quick ? 2000 : 15_000);
  const cfg = {
    n: perProcess * 2,
    rate: num(args.rate, quick ? 500 : 2000),
    phaseMs: num(args.seconds, quick ? 5 : 10) * 1000,
    warmupMs: 2000,
    concurrency: String(typeof args.concurrency === 'string' ? args.concurrency : quick ? '64' : '64,256')
      .split(',')
      .map(Number),
    broadcasts: num(args.broadcasts, quick ? 2 : 3),
  };
  const wanted = String(typeof args.targets === 'string' ? args.targets : 'ours,socketio,centrifugo').split(',');
  const factories: Record<string, () => PeerTarget> = { ours: () => oursTarget(2), socketio: () => socketioTarget(2), centrifugo: () => centrifugoTarget(2) };
  const loadBefore = os.loadavg().map((x) => round(x, 2));
  await infraUp({ log: (l) => log(`[infra] ${l}`) });
  // Shared servers (their CPU includes whatever else runs on the machine).
  const infraRoles = Object.fromEntries((await infraStatus()).filter((x) => x.pid !== undefined).map((x) => [x.name, [x.pid!]]));

  const results: TargetResult[] = [];
  for (const name of wanted) {
    const f = factories[name.trim()];
    if (!f) throw new Error(`unknown peers target ${name} (known: ${Object.keys(factories).join(', ')})`);
    results.push(await measure(f(), cfg, infraRoles, log));
  }

  const loadAfter = os.loadavg().map((x) => round(x, 2));
  const ours = results.find((x) => x.name === 'ours' && !x.error);
  const peers = results.filter((x) => x.name !== 'ours' && !x.error);
  const ratios: Record<string, Record<string, number | null>> = {};
  for (const p of peers) {
    ratios[p.name] = {
      memoryPerConn: ratio(ours?.rssPerConnKB, p.rssPerConnKB),
      deliveredPerSecSaturation: ratio(ours?.saturation?.deliveredPerSec, p.saturation?.deliveredPerSec),
      p99AtFixedRate: ratio(ours?.fixed?.latency.p99, p.fixed?.latency.p99),
      p99AtSaturation: ratio(ours?.saturation?.latency.p99, p.saturation?.latency.p99),
      broadcastTo100: ratio(ours?.broadcast?.ms100, p.broadcast?.ms100),
    };
  }
  const bestRate = peers.reduce<TargetResult | undefined>(
    (b, p) => ((p.saturation?.deliveredPerSec ?? 0) > (b?.saturation?.deliveredPerSec ?? 0) ? p : b),
    undefined,
  );
  const leanest = peers.reduce<TargetResult | undefined>(
    (b, p) => (p.rssPerConnKB !== undefined && (b?.rssPerConnKB === undefined || p.rssPerConnKB < b.rssPerConnKB) ? p : b),
    undefined,
  );
  const targets: TargetCheck[] = [];
  if (ours?.saturation && bestRate?.saturation) {
    const x = ours.saturation.deliveredPerSec / bestRate.saturation.deliveredPerSec;
    targets.push({
      name: 'peers: delivered msgs/s (unicast, saturation)',
      target: `>= 1.5x best peer (${bestRate.name}: ${bestRate.saturation.deliveredPerSec}/s)`,
      measured: `${ours.saturation.deliveredPerSec}/s = ${round(x, 2)}x`,
      met: x >= 1.5,
    });
  }
  if (ours?.rssPerConnKB !== undefined && leanest?.rssPerConnKB !== undefined) {
    const x = ours.rssPerConnKB / leanest.rssPerConnKB;
    targets.push({
      name: 'peers: memory per idle connection',
      target: `<= 0.5x leanest peer (${leanest.name}: ${leanest.rssPerConnKB} KB)`,
      measured: `${ours.rssPerConnKB} KB = ${round(x, 2)}x`,
      met: x <= 0.5,
    });
  }

  const charts: string[] = [];
  const withTimeline = results.filter((x) => x.saturationTimeline?.length);
  if (withTimeline.length) {
    writeLineChart(path.join(outDir, 'peers-unicast-saturation.svg'), {
      title: 'Unicast at saturation (best level of requests in flight), delivered msgs/s',
      xLabel: 's since start',
      yLabel: 'delivered msgs/s',
      series: withTimeline.map((x) => ({ name: x.name, points: x.saturationTimeline! })),
    });
    charts.push('peers-unicast-saturation.svg');
  }
  const withLatency = results.filter((x) => x.fixedLatencyTimeline?.length);
  if (withLatency.length) {
    writeLineChart(path.join(outDir, 'peers-unicast-latency.svg'), {
      title: `Unicast at ${cfg.rate}/s: mean latency per 500 ms`,
      xLabel: 's since start',
      yLabel: 'ms',
      series: withLatency.map((x) => ({ name: x.name, points: x.fixedLatencyTimeline! })),
    });
    charts.push('peers-unicast-latency.svg');
  }
  const withCdf = results.filter((x) => x.broadcastCdf?.length);
  if (withCdf.length) {
    writeLineChart(path.join(outDir, 'peers-broadcast.svg'), {
      title: `Broadcast to ${cfg.n} clients: % received over time`,
      xLabel: 'ms since submission',
      yLabel: '% of clients',
      series: withCdf.map((x) => ({ name: x.name, points: x.broadcastCdf! })),
    });
    charts.push('peers-broadcast.svg');
  }

  const summary: string[] = [
    `${cfg.n} clients per target (${perProcess} per server process x 2), fixed rate ${cfg.rate}/s for ${cfg.phaseMs / 1000} s after a ${cfg.warmupMs / 1000} s warm-up, saturation with ${cfg.concurrency.join(' / ')} requests in flight (best counts) for ${cfg.phaseMs / 1000} s; transient unicast for all (peers do not persist); machine load average (1/5/15 min) ${loadBefore.join('/')} before, ${loadAfter.join('/')} after`,
  ];
  for (const x of results) {
    if (x.error) {
      summary.push(`${x.name}: FAILED: ${x.error}`);
      continue;
    }
    summary.push(
      `${x.name}: ${x.rssPerConnKB} KB RSS/conn${x.heapPerConnKB != null ? ` (${x.heapPerConnKB} KB heap)` : ''}, connect ${x.connectPerSec}/s${x.connectFailed ? ` (${x.connectFailed} failed)` : ''}; ` +
        `unicast @${cfg.rate}/s p50 ${x.fixed?.latency.p50} / p99 ${x.fixed?.latency.p99} ms, lost ${x.fixed?.lost}; ` +
        `saturation ${x.saturation?.deliveredPerSec}/s (${x.saturation?.concurrency} in flight) p50 ${x.saturation?.latency.p50} / p99 ${x.saturation?.latency.p99} ms, lost ${x.saturation?.lost}; ` +
        `broadcast 99% ${x.broadcast?.ms99} ms, 100% ${x.broadcast?.ms100 ?? 'not reached'} ms; ` +
        `lost in all unicast phases ${(x.fixed?.lost ?? 0) + (x.saturationLevels ?? []).reduce((s, l) => s + l.lost, 0)}, errors ${(x.fixed?.errors ?? 0) + (x.saturationLevels ?? []).reduce((s, l) => s + l.errors, 0)}; ` +
        `cores at saturation ${Object.entries(x.saturation?.cores ?? {})
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}`,
    );
  }
  for (const [name, rr] of Object.entries(ratios)) {
    summary.push(
      `ours/${name}: memory/conn ${rr.memoryPerConn ?? '-'}x, delivered/s ${rr.deliveredPerSecSaturation ?? '-'}x, p99 @fixed ${rr.p99AtFixedRate ?? '-'}x, p99 @saturation ${rr.p99AtSaturation ?? '-'}x, broadcast 100% time ${rr.broadcastTo100 ?? '-'}x`,
    );
  }

  const report: ScenarioReport = {
    scenario: 'peers',
    options: { quick, perProcess, ...cfg, targets: wanted },
    summary,
    metrics: {
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAfter,
      targets: Object.fromEntries(
        results.map((x) => [x.name, { ...x, saturationTimeline: undefined, broadcastCdf: undefined, fixedLatencyTimeline: undefined }]),
      ),
      ratios,
      bestPeerDeliveredPerSec: bestRate?.saturation?.deliveredPerSec ?? null,
      bestPeerByRate: bestRate?.name ?? null,
      leanestPeerRssPerConnKB: leanest?.rssPerConnKB ?? null,
      leanestPeer: leanest?.name ?? null,
      oursRssPerConnKB: ours?.rssPerConnKB ?? null,
      oursDeliveredPerSec: ours?.saturation?.deliveredPerSec ?? null,
      oursP99AtFixedRateMs: ours?.fixed?.latency.p99 ?? null,
    },
    charts,
    targets,
  };
  writeReport(outDir, report);
  return report;
};

if (import.meta.url === `file://${process.argv[1]}`) runStandalone('peers', run);
