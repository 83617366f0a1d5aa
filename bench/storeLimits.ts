/**
 * `npx tsx bench/storeLimits.ts [mongodb://127.0.0.1:<port>] [--docs 100000] [--clients 16] [--ops 200] [--backend postgresql|sqlite]`
 *
 * The raw limit of the MongoDB-compatible backend through the `mongodb` driver, the figure each
 * delivery benchmark is reported against (issue #13): insertMany docs/s, findOne by _id/s, find on an
 * indexed top-level field, updateOne $inc/s, and whether `$in` filters are pushed down (time per query
 * with 100 values). Without a URL it starts a private FerretDB (on its own PostgreSQL by default) and
 * removes it afterwards. Prints the figures and writes bench/results/storeLimits-<time>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { startPrivateMongo } from '../infra/stack.js';
import type { MongoBackend } from '../infra/config.js';
import { gitCommit, machineInfo, RESULTS_DIR } from './lib/results.js';
import { measureStoreLimits, type StoreLimitOptions } from './lib/storeLimits.js';

interface Options extends StoreLimitOptions {
  url?: string;
  backend?: MongoBackend;
}

function parseArgs(argv: string[]): Options {
  const opts: Options = { docs: 100_000, clients: 16, ops: 200 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] as string;
    const next = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a}: missing value`);
      return v;
    };
    if (a === '--docs') opts.docs = positive(a, next());
    else if (a === '--clients') opts.clients = positive(a, next());
    else if (a === '--ops') opts.ops = positive(a, next());
    else if (a === '--backend') opts.backend = backendArg(next());
    else if (a.startsWith('mongodb://')) opts.url = a;
    else throw new Error(`unexpected argument "${a}"`);
  }
  return opts;
}

function positive(name: string, v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name} ${v}: expected a positive integer`);
  return n;
}

function backendArg(v: string): MongoBackend {
  if (v !== 'postgresql' && v !== 'sqlite') throw new Error(`--backend ${v}: expected postgresql or sqlite`);
  return v;
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const own = opts.url ? undefined : await startPrivateMongo({ ...(opts.backend ? { backend: opts.backend } : {}) });
  const url = opts.url ?? (own as NonNullable<typeof own>).url;
  const backend = own ? `ferretdb/${own.backend}${own.postgres ? ` (postgresql ${own.postgres.version})` : ''}` : url;
  try {
    console.log(`store limits of ${backend}: ${opts.docs} docs, ${opts.clients} clients...`);
    const figures = await measureStoreLimits(`${url}/?directConnection=true`, opts);
    const result = { benchmark: 'storeLimits', backend, commit: gitCommit(), machine: machineInfo(), at: new Date().toISOString(), ...figures };
    console.log(JSON.stringify(result, null, 2));
    mkdirSync(RESULTS_DIR, { recursive: true });
    const file = path.join(RESULTS_DIR, `storeLimits-${result.at.replace(/[:.]/g, '-')}.json`);
    writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`);
    console.log(`written ${path.relative(process.cwd(), file)}`);
  } finally {
    await own?.dispose();
  }
}

await main();
