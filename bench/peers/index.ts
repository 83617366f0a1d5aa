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
import { infraStatus, infraUp } from '../../infra/stack.js';
import { list, loadAverage, num } from '../lib/scenarioKit.js';
import { runStandalone } from '../lib/standalone.js';
import type { Scenario } from '../lib/types.js';
import { measure } from './measure.js';
import { writePeersReport } from './report.js';
import type { TargetResult } from './results.js';
import { centrifugoTarget, oursTarget, socketioTarget, type PeerTarget } from './targets.js';

export const run: Scenario = async (opts) => {
  const { quick, args, outDir, log } = opts;
  const perProcess = num(opts, 'per-process', 2000, 15_000);
  const cfg = {
    n: perProcess * 2,
    rate: num(opts, 'rate', 500, 2000),
    phaseMs: num(opts, 'seconds', 5, 10) * 1000,
    warmupMs: 2000,
    concurrency: list(opts, 'concurrency', [64], [64, 256]),
    broadcasts: num(opts, 'broadcasts', 2, 3),
  };
  const wanted = String(typeof args.targets === 'string' ? args.targets : 'ours,socketio,centrifugo').split(',');
  const factories: Record<string, () => PeerTarget> = { ours: () => oursTarget(2), socketio: () => socketioTarget(2), centrifugo: () => centrifugoTarget(2) };
  const loadBefore = loadAverage();
  await infraUp({ log: (l) => log(`[infra] ${l}`) });
  // Shared servers (their CPU includes whatever else runs on the machine).
  const infraRoles = Object.fromEntries((await infraStatus()).filter((x) => x.pid !== undefined).map((x) => [x.name, [x.pid!]]));

  const results: TargetResult[] = [];
  for (const name of wanted) {
    const f = factories[name.trim()];
    if (!f) throw new Error(`unknown peers target ${name} (known: ${Object.keys(factories).join(', ')})`);
    results.push(await measure(f(), cfg, infraRoles, log));
  }

  const loadAfter = loadAverage();
  return writePeersReport(results, { quick, perProcess, cfg, wanted, loadBefore, loadAfter, outDir });
};

if (import.meta.url === `file://${process.argv[1]}`) runStandalone('peers', run);
