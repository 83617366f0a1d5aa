/**
 * `npm test`: brings up the local Kafka, Redis and MongoDB-compatible server
 * (provisioning them on first use), runs every `*.test.ts` with Node's test
 * runner, then stops what it started. Extra arguments are passed as file
 * filters: `npm test -- pipeline` runs files whose path contains "pipeline".
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { infraDown, infraUp } from '../infra/stack.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SEARCH = ['common', 'protocol', 'store', 'schemas', 'auth', 'collector', 'dispatcher', 'pusher', 'infra', 'sdk', 'publisher', 'cli', 'test', 'scripts'];

function findTests(dir: string, out: string[] = []): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (entry === 'node_modules' || entry === 'dist' || entry.startsWith('.')) continue;
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) findTests(full, out);
    else if (entry.endsWith('.test.ts')) out.push(full);
  }
  return out;
}

const filters = process.argv.slice(2);
const files = SEARCH.flatMap((d) => findTests(path.join(ROOT, d)))
  // Matched against the path inside the repository: a checkout's own path (say `wt-protocol`) must not match every file.
  .filter((f) => filters.length === 0 || filters.some((flt) => path.relative(ROOT, f).includes(flt)))
  .sort();
if (files.length === 0) {
  console.error(`no test files match ${filters.join(' ')}`);
  process.exit(1);
}

const log = (line: string) => console.log(line);
const { started } = await infraUp({ log });

const code = await new Promise<number>((resolve) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', '--test-concurrency=1', '--test-timeout=300000', ...files],
    { cwd: ROOT, stdio: 'inherit', env: { ...process.env, PUSH_TEST: '1' } },
  );
  const forward = (sig: NodeJS.Signals) => child.kill(sig);
  process.on('SIGINT', forward);
  process.on('SIGTERM', forward);
  child.on('exit', (c, sig) => resolve(c ?? (sig ? 1 : 0)));
});

if (started.length > 0 && process.env.PUSH_TEST_KEEP_INFRA !== '1') {
  await infraDown({ only: started, log });
}
process.exit(code);
