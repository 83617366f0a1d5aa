/**
 * durable: the figures of the durable path (issue #13), each next to the raw limit of the same
 * MongoDB-compatible server measured in the same run (insertMany docs/s, indexed finds/s through
 * the `mongodb` driver), with the ratio:
 *
 *   1. raw limits of the store (bench/lib/storeLimits.ts);
 *   2. persistent unicast over HTTP to --users connected users: a fixed phase at --rate (1,000/s,
 *      target p99 < 100 ms), then a ramp until saturation (target >= 5,000/s with p99 < 250 ms);
 *   3. persistent records on `push.events`, ramped the same way (target >= 5,000 records/s);
 *   4. the reconnect storm: --storm devices away with --messages-per-user stored messages each,
 *      reconnecting at once (target >= 5,000 reconnections/s, every stored message delivered).
 *
 *   npm run bench -- durable [--users 10000] [--rate 1000] [--ramp 2000,3500,5000,7000]
 *     [--events-ramp 1000,2500,5000,7500] [--storm 15000] [--messages-per-user 2]
 *     [--backend shared|postgresql|sqlite]
 *
 * --backend postgresql|sqlite runs everything on a private FerretDB with that backend (the
 * before/after table of docs/performance.md); `shared` (default) uses the local infra's server.
 */
import path from 'node:path';
import { startPrivateMongo } from '../../infra/stack.js';
import type { MongoBackend } from '../../infra/config.js';
import { stack as infra } from '../../test/support/env.js';
import { startBenchStack } from '../lib/benchStack.js';
import { formatLatency } from '../lib/histogram.js';
import { startLoadgen } from '../lib/loadgen.js';
import { list, num, profileEnv, round, startSubmitter, target } from '../lib/scenarioKit.js';
import { measureStoreLimits, type StoreLimits } from '../lib/storeLimits.js';
import type { Scenario, TargetCheck } from '../lib/types.js';
import { runPhase, type PhaseResult, type PhaseSpec } from '../unicast/index.js';
import { run as runStorm } from '../reconnect-storm/index.js';

/** Sustained: delivered at >= 90% of the offered rate, nothing lost, p99 within `p99Ms`. */
const sustained = (r: PhaseResult, p99Ms: number) =>
  r.deliveredPerSecond >= 0.9 * r.rate && r.lost === 0 && r.latency.p99 < p99Ms && r.behind <= 0.05 * r.offered;

function backendArg(v: string | boolean | undefined): MongoBackend | 'shared' {
  if (v === undefined || v === 'shared') return 'shared';
  if (v === 'postgresql' || v === 'sqlite') return v;
  throw new Error(`--backend must be shared, postgresql or sqlite, got ${String(v)}`);
}

export const run: Scenario = async (o) => {
  const users = num(o, 'users', 2000, 10_000);
  const rate = num(o, 'rate', 500, 1000);
  const ramp = list(o, 'ramp', [1000, 2000], [2000, 3500, 5000, 7000, 10_000]);
  const eventsRamp = list(o, 'events-ramp', [1000, 2000], [1000, 2500, 5000, 7500]);
  const seconds = num(o, 'seconds', 4, 10);
  const storm = num(o, 'storm', 1500, 15_000);
  const perUser = num(o, 'messages-per-user', 2, 2);
  const backend = backendArg(o.args.backend);
  const options = { users, rate, ramp, eventsRamp, seconds, storm, messagesPerUser: perUser, backend };

  const own = backend === 'shared' ? undefined : await startPrivateMongo({ backend });
  const mongoUrl = own ? `${own.url}/?directConnection=true` : infra.mongoUrl;
  const store = own ? `ferretdb/${own.backend}` : `shared (${infra.mongoUrl})`;
  const results: PhaseResult[] = [];
  let limits: StoreLimits;
  let stormReport: Awaited<ReturnType<Scenario>>;
  try {
    o.log(`durable: raw limits of ${store}`);
    limits = await measureStoreLimits(mongoUrl, { docs: o.quick ? 20_000 : 100_000, clients: 16, ops: o.quick ? 50 : 200 }, o.log);

    const b = await startBenchStack({ env: { ...profileEnv(o), MONGO_URL: mongoUrl }, logsDir: path.join(o.outDir, 'logs', 'durable'), log: o.log });
    const lg = await startLoadgen({ maxClients: users, app: b.stack.app, ...(await b.signingKey()) });
    const submitter = startSubmitter();
    try {
      const c = await lg.connect({ userPrefix: 'u', count: users, urls: b.pushers.map((p) => p.wsUrl), concurrency: 200 });
      if (c.failed > 0) throw new Error(`${c.failed} of ${users} clients could not connect: ${JSON.stringify(c.errors)}`);
      const base = { users, userPrefix: 'u', batch: 10, concurrency: 64, seconds, settleMaxMs: o.quick ? 20_000 : 60_000 };
      const phase = async (p: Pick<PhaseSpec, 'label' | 'mode' | 'rate'> & Partial<PhaseSpec>) => {
        const r = await runPhase(b, lg, submitter, { ...base, persistent: true, ...p });
        o.log(
          `${r.label}: ${Math.round(r.deliveredPerSecond)}/s delivered of ${r.rate}/s offered, lost ${r.lost}, duplicates ${r.duplicates}, ${formatLatency(r.latency)}${r.backlogAtEnd ? `, ${r.backlogAtEnd} still queued` : ''}`,
        );
        results.push(r);
        return r;
      };
      await phase({ label: 'warmup', mode: 'http', rate: 500, seconds: 2 });
      await phase({ label: `http-persistent-${rate}`, mode: 'http', rate });
      for (const r of ramp) if (!sustained(await phase({ label: `http-persistent-${r}`, mode: 'http', rate: r }), 1000)) break;
      for (const r of eventsRamp) if (!sustained(await phase({ label: `events-persistent-${r}`, mode: 'kafka', rate: r }), 5000)) break;
    } finally {
      await submitter.close();
      await lg.close();
      await b.stop();
    }

    o.log(`durable: reconnect storm, ${storm} devices with ${perUser} stored messages each`);
    stormReport = await runStorm({ ...o, args: { clients: String(storm * 2), drop: '0.5', 'messages-per-user': String(perUser), 'mongo-url': mongoUrl } });
  } finally {
    await own?.dispose();
  }

  const insertRate = limits.insertMany.docsPerSecond;
  const findRate = limits.findByIndexedField.concurrent.perSecond;
  const ratio = (x: number, of: number) => round(x / of, 2);
  const best = (prefix: string, p99Ms: number) =>
    results.filter((r) => r.label.startsWith(prefix) && sustained(r, p99Ms)).sort((a, z) => z.deliveredPerSecond - a.deliveredPerSecond)[0];
  const fixed = results.find((r) => r.label === `http-persistent-${rate}`);
  const http = best('http-persistent', 250);
  const events = best('events-persistent', 5000);
  const sm = stormReport.metrics as {
    reconnectsPerSecond: number;
    reconnected: number;
    reconnectFailed: number;
    lost: number;
    offlineMessagesAccepted: number;
    offlineMessagesDelivered: number;
  };
  const lost = results.reduce((a, r) => a + r.lost, 0);
  const targets: TargetCheck[] = [
    target(
      'persistent unicast (HTTP) at 1,000/s',
      'p99 < 100 ms, 0 lost',
      fixed ? `${Math.round(fixed.deliveredPerSecond)}/s, p99 ${fixed.latency.p99} ms, lost ${fixed.lost}` : 'not run',
      !!fixed && fixed.latency.p99 < 100 && fixed.lost === 0,
    ),
    target(
      'persistent unicast (HTTP), sustained',
      '>= 5,000 msgs/s, p99 < 250 ms',
      http ? `${Math.round(http.deliveredPerSecond)}/s, p99 ${http.latency.p99} ms` : 'none sustained',
      !!http && http.deliveredPerSecond >= 5000,
    ),
    target(
      'persistent push.events, stored and delivered',
      '>= 5,000 records/s',
      events ? `${Math.round(events.deliveredPerSecond)}/s, p99 ${events.latency.p99} ms` : 'none sustained',
      !!events && events.deliveredPerSecond >= 5000,
    ),
    target(
      'reconnect storm with stored messages',
      '>= 5,000 reconnections/s, 0 lost',
      `${sm.reconnectsPerSecond}/s (${sm.reconnected} devices), lost ${sm.lost} of ${sm.offlineMessagesAccepted}`,
      sm.reconnectsPerSecond >= 5000 && sm.reconnectFailed === 0 && sm.lost === 0,
    ),
    target('durable phases lost messages', '0', String(lost), lost === 0),
  ];
  const ratios = {
    httpPersistentPerInsertedDoc: http ? ratio(http.deliveredPerSecond, insertRate) : null,
    eventsPersistentPerInsertedDoc: events ? ratio(events.deliveredPerSecond, insertRate) : null,
    reconnectsPerIndexedFind: ratio(sm.reconnectsPerSecond, findRate),
  };
  const summary = [
    `store ${store}: insertMany ${insertRate} docs/s, indexed find ${findRate}/s (${limits.findByIndexedField.msPerQuerySerial} ms alone), findOne by _id ${limits.findOneById.perSecond}/s, updateOne ${limits.updateOneInc.error ? `failed (${limits.updateOneInc.error})` : `${limits.updateOneInc.perSecond}/s`}`,
    ...results
      .filter((r) => r.label !== 'warmup')
      .map((r) => `${r.label}: ${Math.round(r.deliveredPerSecond)}/s delivered (offered ${r.rate}/s), lost ${r.lost}, ${formatLatency(r.latency)}`),
    `best sustained: HTTP persistent ${http ? `${Math.round(http.deliveredPerSecond)}/s (${ratios.httpPersistentPerInsertedDoc}x the raw insert rate)` : 'none'}; push.events persistent ${events ? `${Math.round(events.deliveredPerSecond)}/s (${ratios.eventsPersistentPerInsertedDoc}x)` : 'none'}`,
    ...stormReport.summary,
    `storm: ${sm.reconnectsPerSecond} reconnections/s = ${ratios.reconnectsPerIndexedFind}x the raw indexed-find rate`,
  ];
  return {
    scenario: 'durable',
    options,
    summary,
    metrics: { store, limits, phases: results, storm: stormReport.metrics, ratios },
    charts: stormReport.charts,
    targets,
  };
};
