/**
 * `npm test`: brings up the local Kafka, Redis and MongoDB-compatible server
 * (provisioning them on first use), runs every `*.test.ts` with Node's test
 * runner, then stops what it started. Extra arguments are passed as file
 * filters: `npm test -- pipeline` runs files whose path contains "pipeline".
 *
 * `npm run test:unit` (`--unit`): only the unit tests, with no servers. A test
 * file is a unit test unless it lives under `test/` or is named
 * `*.int.test.ts`. Unit tests run with Kafka, Redis and MongoDB pointed at a
 * closed port and `PUSH_TEST_UNIT=1`, which makes `test/support/env.ts` throw,
 * so a test that needs servers fails loudly instead of passing by accident.
 */
import { spawn } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { infraDown, infraUp } from '../infra/stack.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const SEARCH = [
  'api',
  'platform',
  'protocol',
  'store',
  'schemas',
  'auth',
  'collector',
  'dispatcher',
  'admin',
  'pusher',
  'infra',
  'sdk',
  'publisher',
  'cli',
  'test',
  'scripts',
];
/** A port nothing listens on (TCP port 1, tcpmux): connecting fails at once. */
const CLOSED = '127.0.0.1:1';
const UNIT_ENV = {
  PUSH_TEST_UNIT: '1',
  KAFKA_BROKERS: CLOSED,
  REDIS_URL: `redis://${CLOSED}`,
  MONGO_URL: `mongodb://${CLOSED}`,
};

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

/** The unit-set rule: not under `test/` and not named `*.int.test.ts`. */
function isUnitTest(file: string): boolean {
  const rel = path.relative(ROOT, file).split(path.sep);
  return rel[0] !== 'test' && !file.endsWith('.int.test.ts');
}

const args = process.argv.slice(2);
const unit = args.includes('--unit');
const filters = args.filter((a) => a !== '--unit');
const files = SEARCH.flatMap((d) => findTests(path.join(ROOT, d)))
  .filter((f) => !unit || isUnitTest(f))
  // Matched against the path inside the repository: a checkout's own path (say `wt-protocol`) must not match every file.
  .filter((f) => filters.length === 0 || filters.some((flt) => path.relative(ROOT, f).includes(flt)))
  .sort();
if (files.length === 0) {
  console.error(`no ${unit ? 'unit ' : ''}test files match ${filters.join(' ')}`);
  process.exit(1);
}

const log = (line: string) => console.log(line);
const { started } = unit ? { started: [] } : await infraUp({ log });

const code = await new Promise<number>((resolve) => {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', '--test', `--test-concurrency=${unit ? 2 : 1}`, `--test-timeout=${unit ? 30_000 : 300_000}`, ...files],
    { cwd: ROOT, stdio: 'inherit', env: { ...process.env, PUSH_TEST: '1', ...(unit ? UNIT_ENV : {}) } },
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
