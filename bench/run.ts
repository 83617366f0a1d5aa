/** `npm run bench -- <scenario> [options]`: runs one benchmark script from bench/. */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const SCENARIOS: Record<string, string> = { 'unicast-latency': 'unicastLatency.ts', broadcast: 'broadcastFanout.ts' };
const [scenario, ...rest] = process.argv.slice(2);
if (!scenario || !SCENARIOS[scenario]) {
  console.error(`usage: npm run bench -- <scenario> [options]\nscenarios: ${Object.keys(SCENARIOS).join(', ')}`);
  process.exit(2);
}
const dir = path.dirname(fileURLToPath(import.meta.url));
const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(dir, SCENARIOS[scenario]), ...rest], { stdio: 'inherit' });
process.exit(r.status ?? 1);
