/**
 * `npm run bench -- <scenario|all> [--quick] [--key value ...]`
 *
 * Runs benchmark scenarios (each starts and stops its own servers), prints
 * each one's summary and writes `<scenario>.json` plus its SVG charts into a
 * fresh folder under bench/results/. `all` runs every scenario in sequence
 * into one folder, records failures instead of stopping, and writes the
 * combined report bench/results/latest.md with its charts in
 * bench/results/latest/.
 */
import { cpSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { gitCommit, machineInfo, newRunDir, RESULTS_DIR, writeReport } from './lib/results.js';
import { killTracked } from './lib/processes.js';
import type { Scenario, ScenarioOptions, ScenarioReport } from './lib/types.js';

// Loaded lazily by path, so a scenario whose module is missing or broken fails alone.
const load = (rel: string) => () => import(new URL(rel, import.meta.url).href) as Promise<{ run: Scenario }>;
const SCENARIOS: Record<string, () => Promise<{ run: Scenario }>> = {
  density: load('./density/index.ts'),
  unicast: load('./unicast/index.ts'),
  broadcast: load('./broadcast/index.ts'),
  'reconnect-storm': load('./reconnect-storm/index.ts'),
  durable: load('./durable/index.ts'),
  peers: load('./peers/index.ts'),
  limit: load('./limit/index.ts'),
};
const ALL = ['density', 'unicast', 'broadcast', 'reconnect-storm', 'peers', 'limit'];

function parseCli(argv: string[]): { name: string; quick: boolean; args: Record<string, string | boolean> } {
  const [name, ...rest] = argv;
  const args: Record<string, string | boolean> = {};
  let quick = false;
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument "${a}" (options are --key value or --flag)`);
    const key = a.slice(2);
    if (key === 'quick') {
      quick = true;
      continue;
    }
    const next = rest[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      args[key] = next;
      i++;
    } else args[key] = true;
  }
  if (!name || (name !== 'all' && !SCENARIOS[name])) {
    throw new Error(`usage: npm run bench -- <scenario|all> [--quick] [--key value ...]\nscenarios: ${Object.keys(SCENARIOS).join(', ')}, all`);
  }
  return { name, quick, args };
}

const log = (line: string) => console.log(`  ${line}`);

/** Runs one scenario; a missing module, a throw or a timeout becomes a failed report, never an exception. */
async function runOne(name: string, base: Omit<ScenarioOptions, 'log'>, timeoutMs: number): Promise<ScenarioReport> {
  const started = Date.now();
  const loadBefore = os.loadavg()[0]!;
  console.log(`\n== ${name}${base.quick ? ' (quick)' : ''}`);
  let report: ScenarioReport;
  try {
    const { run } = await SCENARIOS[name]!();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`did not finish within ${Math.round(timeoutMs / 1000)} s`)), timeoutMs);
    });
    try {
      report = await Promise.race([run({ ...base, log }), timeout]);
    } finally {
      clearTimeout(timer);
    }
  } catch (err) {
    const killed = killTracked();
    if (killed > 0) console.log(`  killed ${killed} processes the scenario left running`);
    const message = (err as Error).message.split('\n')[0]!;
    report = { scenario: name, options: base.args, summary: [`FAILED: ${message}`], metrics: { error: (err as Error).stack ?? message }, charts: [] };
  }
  report.metrics.durationSeconds = Math.round((Date.now() - started) / 100) / 10;
  // The machine is shared: the 1-minute load average around a scenario tells how noisy its figures are.
  report.metrics.loadAverage = { before: Math.round(loadBefore * 10) / 10, after: Math.round(os.loadavg()[0]! * 10) / 10 };
  for (const line of report.summary) console.log(`  ${line}`);
  for (const t of report.targets ?? []) console.log(`  [${t.met ? 'met' : 'MISSED'}] ${t.name}: ${t.measured} (target ${t.target})`);
  const file = writeReport(base.outDir, report);
  console.log(`  wrote ${path.relative(process.cwd(), file)}${report.charts.length ? ` and ${report.charts.join(', ')}` : ''}`);
  return report;
}

function combinedReport(reports: ScenarioReport[], runDir: string, quick: boolean, args: Record<string, string | boolean>): string {
  const m = machineInfo();
  const lines = [
    `# Benchmark report${quick ? ' (quick)' : ''}`,
    '',
    `Run \`${runDir}\` at ${new Date().toISOString()}, commit \`${gitCommit()}\`, options \`${JSON.stringify({ quick, ...args })}\`.`,
    '',
    `Machine: ${m.cores} cores (${m.cpuModel}), ${m.memoryGiB} GiB, ${m.kernel}, Node ${m.node}, open files ${m.openFilesLimit}.`,
    'Every server, load generator and peer ran on this one machine, shared with other work: prefer the ratios within this run to absolute figures.',
    '',
    '## Targets',
    '',
    '| scenario | target | goal | measured | |',
    '|---|---|---|---|---|',
  ];
  for (const r of reports)
    for (const t of r.targets ?? []) lines.push(`| ${r.scenario} | ${t.name} | ${t.target} | ${t.measured} | ${t.met ? 'met' : '**missed**'} |`);
  lines.push(...sameRunRatios(reports));
  for (const r of reports) {
    lines.push(
      '',
      `## ${r.scenario}`,
      '',
      ...r.summary.map((s) => `- ${s}`),
      '',
      `Options: \`${JSON.stringify(r.options)}\` (${String(r.metrics.durationSeconds ?? '?')} s, load average ${JSON.stringify(r.metrics.loadAverage ?? {})}). Data: [${r.scenario}.json](latest/${r.scenario}.json)`,
    );
    for (const c of r.charts) lines.push('', `![${c}](latest/${c})`);
  }
  return `${lines.join('\n')}\n`;
}

/** Ours against the bare `ws` server of the limit scenario, from the same run (targets that span two scenarios). */
function sameRunRatios(reports: ScenarioReport[]): string[] {
  const limit = reports.find((r) => r.scenario === 'limit')?.metrics as
    { wsClients?: number; wsRssPerConnKB?: number; wsBroadcastRawPerSec?: number; wsBroadcastSendPerSec?: number } | undefined;
  const broadcast = reports.find((r) => r.scenario === 'broadcast')?.metrics.runs as
    { clients: number; pushers: number; deliveriesPerSecond: number; latency: { max: number } }[][] | undefined;
  const density = reports.find((r) => r.scenario === 'density')?.metrics.single as { perConnection?: { rssKB: number } } | undefined;
  const out: string[] = [];
  if (limit?.wsBroadcastRawPerSec && broadcast) {
    for (const shots of broadcast) {
      const s = [...shots].sort((a, b) => a.latency.max - b.latency.max)[Math.ceil((shots.length - 1) / 2)];
      if (!s || s.clients !== limit.wsClients) continue;
      const ratio = Math.round((s.deliveriesPerSecond / limit.wsBroadcastRawPerSec) * 100) / 100;
      out.push(
        `| broadcast + limit | deliveries/s against the bare ws raw-write limit, ${s.clients} clients (${s.pushers} pusher(s)) | >= 0.8x | ${s.deliveriesPerSecond}/s vs ${limit.wsBroadcastRawPerSec}/s = ${ratio}x | ${ratio >= 0.8 ? 'met' : '**missed**'} |`,
      );
    }
  }
  if (limit?.wsRssPerConnKB && density?.perConnection) {
    out.push(
      `| density + limit | RSS per idle connection against bare ws (same run) | (reference) | ${density.perConnection.rssKB} KB vs ${limit.wsRssPerConnKB} KB = ${Math.round((density.perConnection.rssKB / limit.wsRssPerConnKB) * 100) / 100}x | - |`,
    );
  }
  return out;
}

async function main(): Promise<void> {
  const { name, quick, args } = parseCli(process.argv.slice(2));
  const names = name === 'all' ? ALL : [name];
  const outDir = newRunDir(name === 'all' ? `all${quick ? '-quick' : ''}` : name);
  // A whole quick run must fit in 10 minutes; each scenario gets a bounded share.
  const timeoutMs = Number(args['timeout-seconds'] ?? (quick ? 200 : 1800)) * 1000;
  const reports: ScenarioReport[] = [];
  for (const n of names) reports.push(await runOne(n, { quick, args, outDir }, timeoutMs));

  if (name === 'all') {
    const latestDir = path.join(RESULTS_DIR, 'latest');
    rmSync(latestDir, { recursive: true, force: true });
    mkdirSync(latestDir, { recursive: true });
    cpSync(outDir, latestDir, { recursive: true });
    writeFileSync(path.join(RESULTS_DIR, 'latest.md'), combinedReport(reports, path.relative(process.cwd(), outDir), quick, args));
    console.log(
      `\nwrote ${path.relative(process.cwd(), path.join(RESULTS_DIR, 'latest.md'))} (charts and data in ${path.relative(process.cwd(), latestDir)}/)`,
    );
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    console.error(err.message);
    process.exit(2);
  },
);
