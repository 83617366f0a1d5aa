/**
 * reconnect-storm: N clients over P pushers; X% of them drop at once (their
 * sockets are reset from the client side); while they are away, persistent
 * messages are sent to them; then they all reconnect at once. Reports
 * reconnections/s, time until all are back, the offline messages delivered
 * on reconnect (and their latency from submission) and the lost count.
 *
 *   npm run bench -- reconnect-storm [--clients 30000] [--pushers 2] [--drop 0.5] [--messages-per-user 2] [--kill] [--mongo-url <url>]
 *
 * With --kill the storm comes from the server side instead: one pusher is
 * SIGKILLed, its clients (1/pushers of them) lose their sockets, the messages
 * are sent while they are away, and they reconnect together to the others.
 */
import path from 'node:path';
import { writeLineChart } from '../lib/chart.js';
import { pipelineLag, startBenchStack, type BenchPusher } from '../lib/benchStack.js';
import { formatLatency } from '../lib/histogram.js';
import { startLoadgen } from '../lib/loadgen.js';
import { nowMs } from '../lib/loadgenProtocol.js';
import { metricSum, num, round, settle, startSubmitter, storeEnv, target, waitUntil, profileEnv } from '../lib/scenarioKit.js';
import type { Scenario } from '../lib/types.js';

const sumMetric = async (pushers: BenchPusher[], name: string, filter?: string) =>
  (await Promise.all(pushers.map((p) => p.metrics().catch(() => '')))).reduce((a, t) => a + metricSum(t, name, filter), 0);

export const run: Scenario = async (o) => {
  const clients = num(o, 'clients', 3000, 30_000);
  const kill = o.args.kill === true;
  const pushers = num(o, 'pushers', kill ? 3 : 2, kill ? 3 : 2);
  const drop = num(o, 'drop', 0.5, 0.5);
  const perUser = num(o, 'messages-per-user', 2, 2);
  const concurrency = num(o, 'concurrency', 2000, 4000);
  if (drop <= 0 || drop > 1) throw new Error('--drop must be a fraction in (0, 1]');
  if (kill && pushers < 2) throw new Error('--kill needs at least 2 pushers');
  const options = {
    clients,
    pushers,
    drop: kill ? 1 / pushers : drop,
    messagesPerUser: perUser,
    reconnectConcurrency: concurrency,
    how: kill ? 'one pusher SIGKILLed, its clients reconnect at once to the others' : 'client-side TCP reset, then all reconnect at once',
  };

  const b = await startBenchStack({ env: { ...profileEnv(o), ...storeEnv(o) }, logsDir: path.join(o.outDir, 'logs', 'reconnect-storm'), pushers, log: o.log });
  const lg = await startLoadgen({ maxClients: clients, app: b.stack.app, ...(await b.signingKey()) });
  const submitter = startSubmitter();
  try {
    const c = await lg.connect({ userPrefix: 'r', count: clients, urls: b.pushers.map((p) => p.wsUrl), concurrency: 300 });
    if (c.failed > 0) throw new Error(`${c.failed} of ${clients} clients could not connect: ${JSON.stringify(c.errors)}`);
    const victim = kill ? b.pushers[0]! : undefined;
    const alive = b.pushers.filter((p) => p !== victim);
    o.log(
      `reconnect-storm: ${clients} clients on ${pushers} pushers in ${round(c.ms / 1000)} s; ${victim ? `killing ${victim.nodeId}` : `dropping ${Math.round(drop * 100)}%`}`,
    );

    let away: string[];
    if (victim) {
      victim.proc.kill('SIGKILL');
      const held = Math.floor(clients / pushers); // clients are spread over the pushers round robin
      const lost = await waitUntil(async () => (await lg.stats()).open <= clients - held, 30_000, 100);
      if (!lost) throw new Error(`the clients of ${victim.nodeId} did not see it die within 30 s`);
      away = await lg.orphans(victim.wsUrl);
    } else {
      away = await lg.drop(drop);
      const gone = await waitUntil(async () => (await sumMetric(b.pushers, 'push_connections')) <= clients - away.length, 30_000, 200);
      if (!gone) throw new Error('the pushers did not see the dropped clients leave within 30 s');
    }

    // Persistent messages for the users who are away: stored, then delivered on reconnect.
    const sub = await submitter.run({
      mode: 'http',
      collectorUrl: b.stack.collector.url,
      apiKey: b.stack.apiKey,
      app: b.stack.app,
      brokers: [],
      topicPrefix: b.stack.env.KAFKA_TOPIC_PREFIX!,
      userPrefix: '',
      users: 0,
      userList: away,
      persistent: true,
      rate: o.quick ? 2000 : 5000,
      durationMs: 120_000,
      maxMessages: away.length * perUser,
      batch: 10,
      concurrency: 32,
    });
    if (sub.accepted < away.length * perUser) o.log(`only ${sub.accepted} of ${away.length * perUser} messages accepted: ${JSON.stringify(sub.errors)}`);
    // Let the dispatcher file them into the inboxes first, so they come back through resume
    // (had it not, they would still arrive on the live path once the users are back).
    const filingStarted = Date.now();
    const drained = await waitUntil(async () => (await pipelineLag(b)).ingest === 0, o.quick ? 30_000 : 120_000, 250);
    const filingSeconds = round((Date.now() - filingStarted) / 1000);
    if (!drained) o.log(`the dispatcher had not filed every offline message after ${filingSeconds} s; reconnecting anyway`);

    const resumedBefore = await sumMetric(alive, 'push_delivered_total', 'path="resume"');
    await lg.record('storm');
    const t0 = nowMs();
    const r = await lg.reconnect({ concurrency, timeoutMs: 30_000, urls: alive.map((p) => p.wsUrl) });
    const reconnectsPerSecond = round(r.ok / (r.ms / 1000));
    const got = await settle(() => lg.peek(), sub.accepted, { quietMs: 10_000, maxMs: o.quick ? 45_000 : 120_000 });
    const collected = await lg.collect();
    const resumed = (await sumMetric(alive, 'push_delivered_total', 'path="resume"')) - resumedBefore;
    const lost = Math.max(0, sub.accepted - got);
    const latency = collected.histogram.summary();
    const stats = await lg.stats();
    const metrics = {
      dropped: away.length,
      reconnected: r.ok,
      reconnectFailed: r.failed,
      reconnectErrors: r.errors,
      reconnectRetried: r.retried,
      reconnectSeconds: round(r.ms / 1000, 2),
      reconnectsPerSecond,
      offlineMessagesAccepted: sub.accepted,
      acceptSeconds: round(sub.ms / 1000, 2),
      dispatcherFilingSeconds: filingSeconds,
      dispatcherDrained: drained,
      offlineMessagesDelivered: collected.unique,
      deliveredByResume: resumed,
      duplicates: collected.duplicates,
      lost,
      offlineLatencyFromSubmit: latency,
      allDeliveredAfterReconnectStartMs: collected.unique > 0 ? round(collected.lastReceiptAt - t0) : null,
      perSecond: collected.perSecond,
      openAfter: stats.open,
      closedUnexpectedly: stats.closedUnexpectedly,
      closeCodes: stats.closeCodes,
    };
    writeLineChart(path.join(o.outDir, 'reconnect-storm.svg'), {
      title: 'reconnect storm: offline messages delivered per second after the storm began',
      xLabel: 'seconds since reconnect start',
      yLabel: 'messages/s',
      series: [{ name: 'delivered', points: collected.perSecond.map((v, i) => [i, v] as [number, number]) }],
    });
    const summary = [
      `${clients} clients on ${pushers} pushers; ${away.length} ${victim ? `lost their pusher (SIGKILL) and reconnected together to the other ${alive.length}` : 'dropped at once (client-side reset) and reconnected together'}: ${r.ok} back (${r.failed} failed) in ${round(r.ms / 1000, 2)} s = ${reconnectsPerSecond} reconnections/s`,
      `offline persistent messages: ${sub.accepted} accepted while away (in ${round(sub.ms / 1000, 1)} s; the dispatcher had filed them ${filingSeconds} s later${drained ? '' : ', NOT all'}), ${collected.unique} delivered after reconnect (${resumed} from the store on resume; the last ${metrics.allDeliveredAfterReconnectStartMs} ms after the storm began), ${collected.duplicates} duplicates, lost ${lost}; submit-to-receipt ${formatLatency(latency)}`,
    ];
    return {
      scenario: 'reconnect-storm',
      options,
      summary,
      metrics,
      charts: ['reconnect-storm.svg'],
      targets: [
        target('reconnections per second', '>= 5,000/s', `${reconnectsPerSecond}/s (${r.ok} clients)`, reconnectsPerSecond >= 5000 && r.failed === 0),
        target('offline messages lost in the storm', '0', `${lost} of ${sub.accepted}`, lost === 0),
      ],
    };
  } finally {
    await submitter.close();
    await lg.close();
    await b.stop();
  }
};
