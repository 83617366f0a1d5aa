/**
 * unicast: C connected users; messages submitted at fixed rates over HTTP
 * (a batched client: `to.users` lists of --batch recipients per request) and
 * separately as Avro records on `push.events`, persistent and transient, then
 * a ramp of rates to saturation. Each client acks persistent messages; the
 * latency is submit-to-receipt (the submission time travels in the payload);
 * lost = accepted - distinct deliveries.
 *
 *   npm run bench -- unicast [--users 10000] [--pushers 1] [--dispatchers 1] [--seconds 15]
 *     [--transient-rate 25000] [--persistent-rate 10000] [--ramp 2000,5000,10000,...] [--batch 10]
 */
import path from 'node:path';
import { writeLineChart, type Series } from '../lib/chart.js';
import { pipelineLag, startBenchStack, type BenchStack } from '../lib/benchStack.js';
import { formatLatency, type LatencySummary } from '../lib/histogram.js';
import { startLoadgen, type Loadgen } from '../lib/loadgen.js';
import { nowMs } from '../lib/loadgenProtocol.js';
import { list, num, round, settle, startSubmitter, storeEnv, target, profileEnv, waitUntil } from '../lib/scenarioKit.js';
import type { SubmitSpec } from '../lib/submitWorker.js';
import type { Scenario, TargetCheck } from '../lib/types.js';

export interface PhaseSpec {
  label: string;
  mode: 'http' | 'kafka';
  persistent: boolean;
  rate: number;
  seconds: number;
  users: number;
  userPrefix: string;
  batch: number;
  concurrency: number;
  /** Longest wait for deliveries after the submission ends. Default 60 s. */
  settleMaxMs?: number;
}

export interface PhaseResult extends PhaseSpec {
  offered: number;
  accepted: number;
  behind: number;
  errors: Record<string, number>;
  delivered: number;
  duplicates: number;
  lost: number;
  /** Records still waiting in Kafka when the phase ended: the "lost" of a backlogged pipeline is (partly) late. */
  backlogAtEnd: number;
  deliveredPerSecond: number;
  latency: LatencySummary;
  perSecond: number[];
  p99PerSecond: number[];
}

type Submitter = ReturnType<typeof startSubmitter>;

/** One fixed-rate phase: record, submit, wait for the deliveries to settle, collect. */
export async function runPhase(b: BenchStack, lg: Loadgen, submitter: Submitter, p: PhaseSpec): Promise<PhaseResult> {
  await lg.record(p.label);
  const spec: SubmitSpec = {
    mode: p.mode,
    collectorUrl: b.stack.collector.url,
    apiKey: b.stack.apiKey,
    app: b.stack.app,
    brokers: [process.env.KAFKA_BROKERS ?? '127.0.0.1:9092'],
    topicPrefix: b.stack.env.KAFKA_TOPIC_PREFIX!,
    userPrefix: p.userPrefix,
    users: p.users,
    persistent: p.persistent,
    rate: p.rate,
    durationMs: p.seconds * 1000,
    batch: p.mode === 'http' ? p.batch : 500,
    concurrency: p.mode === 'http' ? p.concurrency : 4,
  };
  const t0 = nowMs();
  const sub = await submitter.run(spec);
  // Settle: every accepted message arrived, or Kafka has no backlog left for the
  // collector and dispatcher and nothing new arrived for 5 s (bounded).
  const maxMs = p.settleMaxMs ?? 60_000;
  const settleStarted = Date.now();
  await waitUntil(async () => (await lg.peek()).unique >= sub.accepted || Object.values(await pipelineLag(b)).every((v) => v === 0), maxMs, 250);
  await settle(() => lg.peek(), sub.accepted, { quietMs: 5000, maxMs: Math.max(5000, maxMs - (Date.now() - settleStarted)) });
  const backlog = await pipelineLag(b);
  const c = await lg.collect();
  // Over the submission window plus the drain: a pipeline that falls behind shows a lower rate.
  const activeSeconds = Math.max(sub.ms, c.lastReceiptAt - t0) / 1000;
  return {
    ...p,
    offered: sub.offered,
    accepted: sub.accepted,
    behind: sub.behind,
    errors: sub.errors,
    delivered: c.unique,
    duplicates: c.duplicates,
    lost: Math.max(0, sub.accepted - c.unique),
    backlogAtEnd: backlog.ingest + backlog.events,
    deliveredPerSecond: round(c.unique / activeSeconds),
    latency: c.histogram.summary(),
    perSecond: c.perSecond,
    p99PerSecond: lg.ticks(p.label).map((h) => h.summary().p99),
  };
}

const describe = (r: PhaseResult) =>
  `${r.label}: offered ${r.rate}/s for ${r.seconds} s -> accepted ${r.accepted}, delivered ${r.delivered} (${Math.round(r.deliveredPerSecond)}/s), ` +
  `lost ${r.lost}${r.backlogAtEnd ? ` (${r.backlogAtEnd} records still queued in Kafka: late, not necessarily lost)` : ''}, duplicates ${r.duplicates}, errors ${JSON.stringify(r.errors)}${r.behind ? `, source behind by ${r.behind}` : ''}; ${formatLatency(r.latency)}`;

/** Saturated: the pipeline no longer keeps up with the offered rate or latency ran away. */
const saturated = (r: PhaseResult) => r.deliveredPerSecond < 0.9 * r.rate || r.lost > 0 || r.latency.p99 > 1000 || r.behind > 0.05 * r.offered;

export const run: Scenario = async (o) => {
  const users = num(o, 'users', 1000, 10_000);
  const pushers = num(o, 'pushers', 1, 1);
  const dispatchers = num(o, 'dispatchers', 1, 1);
  const seconds = num(o, 'seconds', 4, 15);
  const transientRate = num(o, 'transient-rate', 2000, 25_000);
  const persistentRate = num(o, 'persistent-rate', 300, 10_000);
  const kafkaTransientRate = num(o, 'kafka-transient-rate', 1000, 25_000);
  const kafkaPersistentRate = num(o, 'kafka-persistent-rate', 300, 10_000);
  const ramp = list(o, 'ramp', [2000, 4000], [2000, 5000, 10_000, 15_000, 20_000, 30_000, 40_000]);
  const rampSeconds = num(o, 'ramp-seconds', 3, 6);
  const batch = num(o, 'batch', 10, 10);
  const concurrency = num(o, 'concurrency', 64, 64);
  // A quick run must leave time for the other scenarios: phases past the budget are skipped (and say so).
  const budgetMs = num(o, 'budget-seconds', 110, 1200) * 1000;
  const options = {
    budgetSeconds: budgetMs / 1000,
    users,
    pushers,
    dispatchers,
    seconds,
    transientRate,
    persistentRate,
    kafkaTransientRate,
    kafkaPersistentRate,
    ramp,
    rampSeconds,
    batch,
    concurrency,
  };

  const b = await startBenchStack({
    env: { ...profileEnv(o), ...storeEnv(o) },
    logsDir: path.join(o.outDir, 'logs', 'unicast'),
    pushers,
    dispatchers,
    log: o.log,
  });
  const lg = await startLoadgen({ maxClients: users, app: b.stack.app, ...(await b.signingKey()) });
  const submitter = startSubmitter();
  const results: PhaseResult[] = [];
  const rampResults: PhaseResult[] = [];
  const skipped: string[] = [];
  const carried: Record<string, number> = {};
  const startedAt = Date.now();
  const overBudget = (label: string) => {
    if (Date.now() - startedAt < budgetMs) return false;
    skipped.push(label);
    return true;
  };
  try {
    const c = await lg.connect({ userPrefix: 'u', count: users, urls: b.pushers.map((p) => p.wsUrl), concurrency: 200 });
    if (c.failed > 0) throw new Error(`${c.failed} of ${users} clients could not connect: ${JSON.stringify(c.errors)}`);
    o.log(`unicast: ${users} users connected to ${pushers} pusher(s) in ${round(c.ms / 1000)} s`);
    const base = { users, userPrefix: 'u', batch, concurrency, seconds, settleMaxMs: o.quick ? 15_000 : 60_000 };
    // A phase's backlog (persistent records the dispatcher has not filed yet) would delay the next
    // phase on the same partitions: wait for it to drain (bounded) and record what carried over.
    const drain = async (after: string) => {
      await waitUntil(async () => Object.values(await pipelineLag(b)).every((v) => v === 0), o.quick ? 10_000 : 60_000, 250);
      const left = await pipelineLag(b);
      if (left.ingest + left.events > 0) carried[after] = left.ingest + left.events;
    };
    // Warm up every path once (JIT, connections, topic metadata); not reported.
    await runPhase(b, lg, submitter, { ...base, label: 'warmup', mode: 'http', persistent: false, rate: 500, seconds: 2 });
    await runPhase(b, lg, submitter, { ...base, label: 'warmup-kafka', mode: 'kafka', persistent: false, rate: 500, seconds: 2 });
    // Transient first: a persistent backlog must not be billed to a transient phase.
    const phases: Omit<PhaseSpec, keyof typeof base>[] = [
      { label: 'http-transient', mode: 'http', persistent: false, rate: transientRate },
      { label: 'kafka-transient', mode: 'kafka', persistent: false, rate: kafkaTransientRate },
      { label: 'http-persistent', mode: 'http', persistent: true, rate: persistentRate },
      { label: 'kafka-persistent', mode: 'kafka', persistent: true, rate: kafkaPersistentRate },
    ];
    for (const ph of phases) {
      if (overBudget(ph.label)) continue;
      o.log(`unicast: ${ph.label} at ${ph.rate}/s`);
      const r = await runPhase(b, lg, submitter, { ...base, ...ph });
      results.push(r);
      o.log(describe(r));
      await drain(ph.label);
    }
    for (const persistent of o.quick ? [false] : [false, true]) {
      for (const rate of ramp) {
        if (overBudget(`ramp ${persistent ? 'persistent' : 'transient'} ${rate}/s`)) break;
        const r = await runPhase(b, lg, submitter, {
          ...base,
          label: `ramp-http-${persistent ? 'persistent' : 'transient'}-${rate}`,
          mode: 'http',
          persistent,
          rate,
          seconds: rampSeconds,
        });
        rampResults.push(r);
        o.log(describe(r));
        await drain(r.label);
        if (saturated(r)) break;
      }
    }
  } finally {
    await submitter.close();
    await lg.close();
    await b.stop();
  }

  const charts: string[] = [];
  const series = (pick: (r: PhaseResult) => number[]): Series[] =>
    results.map((r) => ({ name: r.label, points: pick(r).map((v, i) => [i, v] as [number, number]) }));
  writeLineChart(path.join(o.outDir, 'unicast-throughput.svg'), {
    title: 'unicast: distinct deliveries per second',
    xLabel: 'seconds since phase start',
    yLabel: 'deliveries/s',
    series: series((r) => r.perSecond),
  });
  writeLineChart(path.join(o.outDir, 'unicast-latency.svg'), {
    title: 'unicast: p99 submit-to-receipt latency per second',
    xLabel: 'seconds since phase start',
    yLabel: 'p99 ms',
    series: series((r) => r.p99PerSecond),
  });
  const rampSeries = (persistent: boolean, pick: (r: PhaseResult) => number) => ({
    name: persistent ? 'persistent' : 'transient',
    points: rampResults.filter((r) => r.persistent === persistent).map((r) => [r.rate, pick(r)] as [number, number]),
  });
  writeLineChart(path.join(o.outDir, 'unicast-ramp.svg'), {
    title: 'unicast ramp (HTTP): delivered/s against offered/s',
    xLabel: 'offered msgs/s',
    yLabel: 'delivered msgs/s',
    series: [rampSeries(false, (r) => r.deliveredPerSecond), rampSeries(true, (r) => r.deliveredPerSecond)],
  });
  writeLineChart(path.join(o.outDir, 'unicast-ramp-p99.svg'), {
    title: 'unicast ramp (HTTP): p99 latency against offered/s',
    xLabel: 'offered msgs/s',
    yLabel: 'p99 ms',
    series: [rampSeries(false, (r) => r.latency.p99), rampSeries(true, (r) => r.latency.p99)],
  });
  charts.push('unicast-throughput.svg', 'unicast-latency.svg', 'unicast-ramp.svg', 'unicast-ramp-p99.svg');

  // The best sustained point of each kind: the highest rate that was not saturated.
  const best = (persistent: boolean) => {
    const all = [...results.filter((r) => r.mode === 'http'), ...rampResults].filter((r) => r.persistent === persistent && !saturated(r));
    return all.sort((a, b2) => b2.deliveredPerSecond - a.deliveredPerSecond)[0];
  };
  const totalLost = [...results, ...rampResults].reduce((a, r) => a + r.lost, 0);
  const targets: TargetCheck[] = [];
  const fixed = (label: string) => results.find((r) => r.label === label);
  for (const [label, min, p99] of [
    ['http-persistent', 10_000, 100],
    ['kafka-persistent', 10_000, 100],
    ['http-transient', 25_000, 50],
    ['kafka-transient', 25_000, 50],
  ] as const) {
    const r = fixed(label);
    if (!r) continue;
    targets.push(
      target(
        `${label.replace('-', ' ')} throughput at p99`,
        `>= ${min / 1000}k msgs/s with p99 < ${p99} ms`,
        `${Math.round(r.deliveredPerSecond)}/s delivered at ${r.rate}/s offered, p99 ${r.latency.p99} ms, lost ${r.lost}`,
        r.deliveredPerSecond >= min && r.latency.p99 < p99 && r.lost === 0,
      ),
    );
  }
  targets.push(target('unicast lost messages', '0', String(totalLost), totalLost === 0));
  const bt = best(false);
  const bp = best(true);
  const summary = [
    ...results.map(describe),
    `ramp (HTTP, ${batch} recipients/request): ${rampResults.map((r) => `${r.persistent ? 'P' : 'T'}${r.rate}: ${Math.round(r.deliveredPerSecond)}/s p99 ${r.latency.p99} ms${saturated(r) ? ' (saturated)' : ''}`).join('; ')}`,
    ...(Object.keys(carried).length ? [`Kafka backlog not drained after a phase (records carried into the next): ${JSON.stringify(carried)}`] : []),
    ...(skipped.length ? [`skipped for the time budget (${budgetMs / 1000} s): ${skipped.join(', ')}`] : []),
    `best unsaturated HTTP: transient ${bt ? `${Math.round(bt.deliveredPerSecond)}/s (p99 ${bt.latency.p99} ms)` : 'none'}, persistent ${bp ? `${Math.round(bp.deliveredPerSecond)}/s (p99 ${bp.latency.p99} ms)` : 'none'}`,
  ];
  return { scenario: 'unicast', options, summary, metrics: { phases: results, ramp: rampResults, totalLost, skipped }, charts, targets };
};
