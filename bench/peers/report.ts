/** peers: ours against the peers (ratios and the issue's targets), the charts, the summary lines and the report. */
import path from 'node:path';
import { writeLineChart } from '../lib/chart.js';
import { writeReport } from '../lib/results.js';
import { round } from '../lib/scenarioKit.js';
import type { ScenarioReport, TargetCheck } from '../lib/types.js';
import type { MeasureConfig } from './measure.js';
import type { TargetResult } from './results.js';

export interface PeersRun {
  quick: boolean;
  perProcess: number;
  cfg: MeasureConfig;
  wanted: string[];
  loadBefore: number[];
  loadAfter: number[];
  outDir: string;
}

const ratio = (a: number | null | undefined, b: number | null | undefined) => (a && b ? Math.round((a / b) * 100) / 100 : null);

/** Ours / each peer, the peer that delivers most and the leanest one, and the issue's targets against them. */
function compare(results: TargetResult[]) {
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
  return { ours, ratios, bestRate, leanest, targets };
}

/** The three charts, each with the targets that have its series; returns their file names. */
function writeCharts(results: TargetResult[], run: PeersRun): string[] {
  const charts: string[] = [];
  const chart = (file: string, title: string, xLabel: string, yLabel: string, points: (x: TargetResult) => Array<[number, number]> | undefined) => {
    const withPoints = results.filter((x) => points(x)?.length);
    if (!withPoints.length) return;
    writeLineChart(path.join(run.outDir, file), { title, xLabel, yLabel, series: withPoints.map((x) => ({ name: x.name, points: points(x)! })) });
    charts.push(file);
  };
  chart(
    'peers-unicast-saturation.svg',
    'Unicast at saturation (best level of requests in flight), delivered msgs/s',
    's since start',
    'delivered msgs/s',
    (x) => x.saturationTimeline,
  );
  chart('peers-unicast-latency.svg', `Unicast at ${run.cfg.rate}/s: mean latency per 500 ms`, 's since start', 'ms', (x) => x.fixedLatencyTimeline);
  chart('peers-broadcast.svg', `Broadcast to ${run.cfg.n} clients: % received over time`, 'ms since submission', '% of clients', (x) => x.broadcastCdf);
  return charts;
}

function summaryLines(results: TargetResult[], ratios: Record<string, Record<string, number | null>>, run: PeersRun): string[] {
  const { cfg } = run;
  const summary: string[] = [
    `${cfg.n} clients per target (${run.perProcess} per server process x 2), fixed rate ${cfg.rate}/s for ${cfg.phaseMs / 1000} s after a ${cfg.warmupMs / 1000} s warm-up, saturation with ${cfg.concurrency.join(' / ')} requests in flight (best counts) for ${cfg.phaseMs / 1000} s; transient unicast for all (peers do not persist); machine load average (1/5/15 min) ${run.loadBefore.join('/')} before, ${run.loadAfter.join('/')} after`,
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
  return summary;
}

/** Writes the charts and peers.json; returns the report. */
export function writePeersReport(results: TargetResult[], run: PeersRun): ScenarioReport {
  const { ours, ratios, bestRate, leanest, targets } = compare(results);
  const charts = writeCharts(results, run);
  const summary = summaryLines(results, ratios, run);
  const report: ScenarioReport = {
    scenario: 'peers',
    options: { quick: run.quick, perProcess: run.perProcess, ...run.cfg, targets: run.wanted },
    summary,
    metrics: {
      loadAverageBefore: run.loadBefore,
      loadAverageAfter: run.loadAfter,
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
  writeReport(run.outDir, report);
  return report;
}
