/**
 * peers: the measurements of one target, in order: memory per idle connection,
 * unicast at a fixed rate (after a warm-up) and at saturation, broadcast.
 */
import { arrivalCdf } from '../lib/chart.js';
import { formatLatency } from '../lib/histogram.js';
import { cpuSeconds, processTree, rssOfTrees } from '../lib/procs.js';
import { kb, median, round, sleep } from '../lib/scenarioKit.js';
import { ClientPool, Publisher } from './clients.js';
import { timeSeries, unicastOf, type BroadcastResult, type SaturationLevel, type TargetResult } from './results.js';
import type { PeerTarget } from './targets.js';

export interface MeasureConfig {
  n: number;
  rate: number;
  phaseMs: number;
  warmupMs: number;
  concurrency: number[];
  broadcasts: number;
}

type Log = (l: string) => void;

/** One target's clients and publisher while it is measured; `runId` numbers the publish runs. */
interface Session {
  target: PeerTarget;
  cfg: MeasureConfig;
  r: TargetResult;
  log: Log;
  pool: ClientPool;
  pub: Publisher;
  /** Clients connected. */
  connected: number;
  users: string[];
  api: ReturnType<PeerTarget['publishApi']>;
  runId: number;
}

export async function measure(target: PeerTarget, cfg: MeasureConfig, infraRoles: Record<string, number[]>, log: Log): Promise<TargetResult> {
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
    const conn = await connectClients(target, pool, cfg.n, r, log);
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
    const s: Session = { target, cfg, r, log, pool, pub, connected: conn.ok, users, api, runId: 1 };
    await unicastFixed(s);
    await unicastSaturation(s, infraRoles);
    await broadcast(s);
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

async function connectClients(target: PeerTarget, pool: ClientPool, n: number, r: TargetResult, log: Log) {
  log(`peers/${target.name}: connecting ${n} clients from ${pool.processes} processes`);
  const conn = await pool.connect({ kind: target.kind, endpoints: target.wsEndpoints(), n, ...target.connectExtra() });
  Object.assign(r, {
    clients: n,
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
  return conn;
}

/** One unicast publish run to random connected users over the target's publish API. */
function publishUnicast(s: Session, mode: 'rate' | 'saturate', rate: number, durationMs: number, concurrency: number) {
  return s.pub.run({ run: s.runId, kind: s.target.kind, mode, urls: s.api.unicast, headers: s.api.headers, users: s.users, rate, durationMs, concurrency });
}

/** Warm-up (not measured, same for every target: JIT, connection pools, first Kafka/Redis round trips), then the fixed rate. */
async function unicastFixed(s: Session): Promise<void> {
  const { cfg, r, pool } = s;
  await pool.reset(s.runId);
  await publishUnicast(s, 'rate', cfg.rate, cfg.warmupMs, 256);
  await pool.reset(++s.runId);
  const fixed = await publishUnicast(s, 'rate', cfg.rate, cfg.phaseMs, 256);
  await pool.waitFor((c) => c.received >= fixed.accepted, { idleMs: 3000, timeoutMs: 20_000 });
  const fixedCol = await pool.collect();
  r.fixed = unicastOf(fixed, fixedCol, cfg.rate);
  r.fixedLatencyTimeline = timeSeries(fixedCol, fixed.startedAt).meanMs;
  s.log(
    `peers/${s.target.name}: unicast at ${cfg.rate}/s: ${r.fixed.deliveredPerSec} delivered/s, ${formatLatency(r.fixed.latency)}, lost ${r.fixed.lost}, errors ${r.fixed.errors}, skipped ${r.fixed.skipped}`,
  );
}

/** Closed loop at each concurrency level; the level that delivers most is "saturation". */
async function unicastSaturation(s: Session, infraRoles: Record<string, number[]>): Promise<void> {
  const { cfg, r, pool, pub } = s;
  r.saturationLevels = [];
  for (const concurrency of cfg.concurrency) {
    await pool.reset(++s.runId);
    const roles: Record<string, number[]> = { ...s.target.cpuRoles(), ...infraRoles, publisher: [pub.pid], clients: pool.pids };
    const cpu0 = cpuOfRoles(roles);
    const satT0 = performance.now();
    const sat = await publishUnicast(s, 'saturate', 0, cfg.phaseMs, concurrency);
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
    s.log(
      `peers/${s.target.name}: unicast at saturation (${concurrency} in flight): ${level.deliveredPerSec} delivered/s, ${formatLatency(level.latency)}, lost ${level.lost}, errors ${level.errors}; cores used: ${JSON.stringify(level.cores)}`,
    );
    if (!r.saturation || level.deliveredPerSec > r.saturation.deliveredPerSec) {
      r.saturation = level;
      r.saturationTimeline = timeSeries(satCol, sat.startedAt).rate;
    }
  }
}

/** `cfg.broadcasts` broadcasts to every connected client: time to 50/99/100%, the median over runs. */
async function broadcast(s: Session): Promise<void> {
  const { cfg, r, pool, connected, api } = s;
  const runs: BroadcastResult['runs'] = [];
  for (let i = 0; i < cfg.broadcasts; i++) {
    await pool.reset(++s.runId);
    const b = await s.pub.run({
      run: s.runId,
      kind: s.target.kind,
      mode: 'broadcast',
      urls: [api.broadcast],
      headers: api.headers,
      users: [],
      rate: 0,
      durationMs: 0,
      concurrency: 1,
    });
    if (b.accepted !== 1) throw new Error(`broadcast refused: ${b.firstError}`);
    await pool.waitFor((c) => c.broadcast >= connected, { idleMs: 3000, timeoutMs: 30_000 });
    const a = (await pool.collect()).arrivals;
    const at = (p: number) => a[Math.min(a.length - 1, Math.ceil(p * connected) - 1)] ?? NaN;
    const ms100 = a.length >= connected ? a[a.length - 1]! : null;
    runs.push({
      received: a.length,
      ms50: round(at(0.5)),
      ms99: round(at(0.99)),
      ms100: ms100 === null ? null : round(ms100),
      deliveriesPerSec: ms100 === null ? null : Math.round(a.length / (ms100 / 1000)),
    });
    if (i === cfg.broadcasts - 1) r.broadcastCdf = arrivalCdf(a, connected);
    await sleep(500);
  }
  /** The median, or null when a run has none (100% not reached). */
  const med = (xs: Array<number | null>) => (xs.length > 0 && xs.every((x) => x !== null) ? median(xs as number[]) : null);
  r.broadcast = {
    clients: connected,
    runs,
    ms99: med(runs.map((x) => x.ms99)) ?? NaN,
    ms100: med(runs.map((x) => x.ms100)),
    deliveriesPerSec: med(runs.map((x) => x.deliveriesPerSec)),
  };
  s.log(
    `peers/${s.target.name}: broadcast to ${connected}: 99% ${r.broadcast.ms99} ms, 100% ${r.broadcast.ms100 ?? 'not reached'} ms, ${r.broadcast.deliveriesPerSec ?? '-'} deliveries/s (median of ${runs.length})`,
  );
}

/** CPU seconds used so far by each role's processes (with their descendants). */
function cpuOfRoles(roles: Record<string, number[]>): Record<string, number> {
  return Object.fromEntries(Object.entries(roles).map(([k, pids]) => [k, pids.flatMap(processTree).reduce((s, p) => s + cpuSeconds(p), 0)]));
}
