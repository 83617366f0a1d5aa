import { killAll } from './procs.js';
import { newRunDir } from './results.js';
import type { Scenario } from './types.js';

/** `--name value` and `--flag` pairs, as ScenarioOptions.args. */
export function parseScenarioArgs(argv: string[]): Record<string, string | boolean> {
  const args: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) continue;
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) {
      args[a.slice(2)] = next;
      i++;
    } else args[a.slice(2)] = true;
  }
  return args;
}

/**
 * Runs one scenario on its own (`npx tsx bench/<name>/index.ts [--quick] ...`) in a fresh
 * results folder, prints its summary and targets, and kills every child it started.
 */
export function runStandalone(name: string, scenario: Scenario): void {
  const args = parseScenarioArgs(process.argv.slice(2));
  const outDir = newRunDir(name);
  scenario({ quick: Boolean(args.quick), args, outDir, log: (l) => console.log(l) })
    .then((r) => {
      const targets = (r.targets ?? []).map((t) => `${t.met ? 'MET' : 'MISSED'} ${t.name}: ${t.measured} (target ${t.target})`);
      console.log(['', ...r.summary, ...targets, `wrote ${outDir}`].join('\n'));
      killAll();
      process.exit(0);
    })
    .catch((err) => {
      console.error(err);
      killAll();
      process.exit(1);
    });
}
