/**
 * density: idle WebSocket connections, first on one pusher process (up to
 * what its open-file limit allows), then across several pushers. Reports RSS
 * and heap per connection (measured in the pusher after a full GC, before
 * and after connecting), connect rate, and the pushers' CPU at idle with
 * heartbeats on.
 *
 *   npm run bench -- density [--single 19000] [--total 150000] [--pushers 8] [--idle-seconds 30] [--heartbeat-ms 25000]
 */
import path from 'node:path';
import os from 'node:os';
import { startBenchStack, type BenchPusher, type MemoryProbe } from '../lib/benchStack.js';
import { startLoadgen } from '../lib/loadgen.js';
import { cpuPercent } from '../lib/procStats.js';
import { summarise } from '../lib/profileSummary.js';
import { kb, metricSum, mib, num, quiesce, round, target, waitUntil, pusherEnvArg, profileEnv } from '../lib/scenarioKit.js';
import type { Scenario, TargetCheck } from '../lib/types.js';

const retries = (r: Record<string, number>) => Object.values(r).reduce((a, v) => a + v, 0);

const perConn = (before: MemoryProbe, after: MemoryProbe, n: number) => ({
  rssKB: kb((after.rss - before.rss) / n),
  heapKB: kb((after.heapUsed - before.heapUsed) / n),
  externalKB: kb((after.external - before.external) / n),
});

async function serverConnections(pushers: BenchPusher[]): Promise<number> {
  const texts = await Promise.all(pushers.map((p) => p.metrics().catch(() => '')));
  return texts.reduce((a, t) => a + metricSum(t, 'push_connections'), 0);
}

export const run: Scenario = async (o) => {
  const single = num(o, 'single', 3000, 19_000);
  const total = num(o, 'total', 6000, 150_000);
  const pusherCount = num(o, 'pushers', 2, 8);
  const idleSeconds = num(o, 'idle-seconds', 12, 30);
  // Quick runs use a shorter heartbeat so the short idle window still holds one (more work, not less).
  const heartbeatMs = num(o, 'heartbeat-ms', 10_000, 25_000);
  const concurrency = num(o, 'concurrency', 200, 400);
  const options = { single, total, pushers: pusherCount, idleSeconds, heartbeatMs, concurrency, loadgenPerWorker: 15_000 };
  const summary: string[] = [];
  const metrics: Record<string, unknown> = {};
  const targets: TargetCheck[] = [];

  const b = await startBenchStack({
    env: profileEnv(o),
    logsDir: path.join(o.outDir, 'logs', 'density'),
    pushers: 1,
    pusherEnv: { PUSHER_HEARTBEAT_MS: String(heartbeatMs), ...pusherEnvArg(o) },
    log: o.log,
  });
  const lg = await startLoadgen({ maxClients: Math.max(single, total), app: b.stack.app, ...(await b.signingKey()) });
  try {
    // Phase 1: one pusher, as many connections as one process may hold.
    const p1 = b.pushers[0]!;
    const before = await p1.memory();
    o.log(`density: ${single} connections to one pusher (${lg.workers} load generator processes)`);
    const c1 = await lg.connect({ userPrefix: 'u', count: single, urls: [p1.wsUrl], concurrency });
    await waitUntil(async () => (await serverConnections([p1])) >= c1.ok, 15_000, 250);
    // Connecting leaves work behind (routes, presence, resume reads); memory is read once it is done and the node sat idle.
    const settleStarted = Date.now();
    await quiesce([p1.pid], { timeoutMs: o.quick ? 20_000 : 60_000 });
    const settleSeconds = round((Date.now() - settleStarted) / 1000);
    // --profile-idle: a CPU profile of the idle window (what heartbeats cost), summarised in the report.
    const idleProfile = o.args['profile-idle'] ? p1.cpuProfile(idleSeconds * 1000, path.join(o.outDir, 'density-idle.cpuprofile')) : undefined;
    const [idle1] = await cpuPercent([p1.pid], idleSeconds * 1000);
    if (idleProfile) metrics.idleProfile = summarise(await idleProfile, 15);
    const after = await p1.memory();
    const one = perConn(before, after, c1.ok);
    metrics.single = {
      connected: c1.ok,
      failed: c1.failed,
      errors: c1.errors,
      retried: c1.retried,
      connectPerSecond: round(c1.perSecond),
      connectSeconds: round(c1.ms / 1000, 2),
      settleSeconds,
      before,
      after,
      perConnection: one,
      idleCpuPercent: idle1,
      serverConnections: await serverConnections([p1]),
    };
    summary.push(
      `one pusher: ${c1.ok} connections (${c1.failed} failed, ${retries(c1.retried)} attempts retried) at ${Math.round(c1.perSecond)}/s (work left behind done ${settleSeconds} s later); RSS ${mib(before.rss)} -> ${mib(after.rss)} MiB = ${one.rssKB} KB/conn, heap ${one.heapKB} KB/conn, external ${one.externalKB} KB/conn; idle CPU ${idle1}% of a core over ${idleSeconds} s`,
    );
    targets.push(
      target(
        'memory per idle connection (one pusher at its max)',
        '<= 8 KB RSS',
        `${one.rssKB} KB RSS (${one.heapKB} KB heap) at ${c1.ok} connections${o.quick ? ' (quick run: below the per-process maximum)' : ''}`,
        one.rssKB <= 8,
      ),
    );

    // Phase 2: more pushers, the rest of the connections spread over the new ones.
    if (total > single && pusherCount > 1) {
      o.log(`density: ${total - single} more connections over ${pusherCount - 1} more pushers`);
      const more = await Promise.all(Array.from({ length: pusherCount - 1 }, () => b.addPusher()));
      const befores = await Promise.all(more.map((p) => p.memory()));
      const c2 = await lg.connect({ userPrefix: 'v', count: total - single, urls: more.map((p) => p.wsUrl), concurrency });
      const expected = c1.ok + c2.ok;
      await waitUntil(async () => (await serverConnections(b.pushers)) >= expected, 30_000, 500);
      await quiesce(
        b.pushers.map((p) => p.pid),
        { timeoutMs: o.quick ? 20_000 : 120_000 },
      );
      const held = await serverConnections(b.pushers);
      const idle = await cpuPercent(
        b.pushers.map((p) => p.pid),
        idleSeconds * 1000,
      );
      const afters = await Promise.all(more.map((p) => p.memory()));
      const counts = await Promise.all(
        more.map((p) =>
          p.metrics().then(
            (t) => metricSum(t, 'push_connections'),
            () => 0,
          ),
        ),
      );
      const perPusher = more.map((p, i) => ({
        node: p.nodeId,
        connections: counts[i]!,
        ...perConn(befores[i]!, afters[i]!, Math.max(1, counts[i]!)),
        rssMiB: mib(afters[i]!.rss),
      }));
      const idleSum = round(idle.reduce((a, v) => a + v, 0));
      const machinePercent = round(idleSum / os.cpus().length);
      const lgStats = await lg.stats();
      const rssTotal = b.pushers.reduce((a, p) => a + p.rssBytes(), 0);
      metrics.multi = {
        pushers: b.pushers.length,
        connected: expected,
        failed: c2.failed,
        errors: c2.errors,
        retried: c2.retried,
        serverConnections: held,
        connectPerSecond: round(c2.perSecond),
        connectSeconds: round(c2.ms / 1000, 2),
        perPusher,
        idleCpuPercentPerPusher: idle,
        idleCpuPercentSum: idleSum,
        idleCpuPercentOfMachine: machinePercent,
        pusherRssTotalMiB: mib(rssTotal),
        loadgen: {
          processes: lg.workers,
          open: lgStats.open,
          closedUnexpectedly: lgStats.closedUnexpectedly,
          closeCodes: lgStats.closeCodes,
          rssMiB: mib(lgStats.rssBytes),
        },
      };
      const avgRss = round(perPusher.reduce((a, p) => a + p.rssKB, 0) / perPusher.length);
      summary.push(
        `${b.pushers.length} pushers: ${held} connections held (${c2.failed} of ${total - single} failed, ${retries(c2.retried)} attempts retried) at ${Math.round(c2.perSecond)}/s; new pushers ${avgRss} KB RSS/conn on average; pushers' RSS total ${mib(rssTotal)} MiB`,
        `idle with heartbeats every ${heartbeatMs / 1000} s: pushers use ${idleSum}% of one core in total (${machinePercent}% of the machine), per pusher ${idle.join(', ')}%`,
        `load generator: ${lg.workers} processes, ${lgStats.open} clients open, ${lgStats.closedUnexpectedly} closed unexpectedly, ${mib(lgStats.rssBytes)} MiB RSS`,
      );
      targets.push(
        target('idle connections on this machine', '>= 150,000', `${held}${o.quick ? ' (quick run: sized below the target)' : ''}`, held >= 150_000),
      );
      targets.push(
        target(
          'CPU at idle with heartbeats on',
          '< 10% of the machine',
          `${machinePercent}% (${idleSum}% of one core over ${b.pushers.length} pushers)`,
          machinePercent < 10,
        ),
      );
    }
  } finally {
    await lg.close();
    await b.stop();
  }
  return { scenario: 'density', options, summary, metrics, charts: [], targets };
};
