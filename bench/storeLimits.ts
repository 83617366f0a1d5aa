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
import { MongoClient, type Collection } from 'mongodb';
import { startPrivateMongo } from '../infra/stack.js';
import type { MongoBackend } from '../infra/config.js';
import { gitCommit, machineInfo, RESULTS_DIR } from './lib/results.js';

interface Doc {
  _id: string;
  u: string;
  n: number;
  body: string;
}

interface Options {
  url?: string;
  docs: number;
  clients: number;
  /** findOne and updateOne calls per client (fewer for a slow backend such as FerretDB/SQLite). */
  ops: number;
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

/** Users: 1,000 distinct values of the indexed field, so each find by it returns ~docs/1000 documents. */
const USERS = 1000;
const docId = (i: number): string => `m${String(i).padStart(8, '0')}`;
const userOf = (i: number): string => `u${i % USERS}`;
const BODY = 'x'.repeat(200);

/** Runs `work(client, op)` for opsPerClient operations on each of `clients` concurrent clients; returns ops/s. */
async function concurrent(
  colls: Collection<Doc>[],
  opsPerClient: number,
  work: (coll: Collection<Doc>, op: number) => Promise<unknown>,
): Promise<{ ops: number; seconds: number; perSecond: number }> {
  const t0 = performance.now();
  await Promise.all(
    colls.map(async (coll, c) => {
      for (let op = 0; op < opsPerClient; op++) await work(coll, c * opsPerClient + op);
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  const ops = colls.length * opsPerClient;
  return { ops, seconds: round(seconds), perSecond: Math.round(ops / seconds) };
}

/** Mean time of one query run `runs` times in series (ms), and the documents it returned. */
async function timed(runs: number, query: (run: number) => Promise<number>): Promise<{ msPerQuery: number; docs: number }> {
  let docs = 0;
  const t0 = performance.now();
  for (let r = 0; r < runs; r++) docs = await query(r);
  return { msPerQuery: round((performance.now() - t0) / runs), docs };
}

const round = (x: number): number => Math.round(x * 10) / 10;
const randomInt = (n: number): number => Math.floor(Math.random() * n);

/** FerretDB 1.x reports in explain whether the filter went to the backend (`filterPushdown`). */
async function pushdown(coll: Collection<Doc>, filter: object): Promise<boolean | undefined> {
  try {
    const plan = (await coll.find(filter).explain()) as Record<string, unknown>;
    return typeof plan.filterPushdown === 'boolean' ? plan.filterPushdown : undefined;
  } catch {
    return undefined;
  }
}

async function measure(url: string, opts: Options): Promise<Record<string, unknown>> {
  const clients = await Promise.all(
    Array.from({ length: opts.clients }, () => new MongoClient(url, { maxPoolSize: 2, serverSelectionTimeoutMS: 10_000 }).connect()),
  );
  const dbName = `store_limits_${Date.now().toString(36)}`;
  const colls = clients.map((c) => c.db(dbName).collection<Doc>('docs'));
  const first = colls[0] as Collection<Doc>;
  try {
    await first.createIndex({ u: 1 });
    const calls = Math.ceil(opts.docs / 100 / opts.clients);
    const total = calls * opts.clients * 100;
    const insert = await concurrent(colls, calls, (coll, call) =>
      coll.insertMany(Array.from({ length: 100 }, (_, k) => ({ _id: docId(call * 100 + k), u: userOf(call * 100 + k), n: 0, body: BODY })), {
        ordered: false,
      }),
    );
    console.log(`insertMany: ${Math.round(total / insert.seconds)} docs/s`);
    const findById = await concurrent(colls, opts.ops, (coll) => coll.findOne({ _id: docId(randomInt(total)) }));
    console.log(`findOne by _id: ${findById.perSecond}/s`);
    const findByField = await concurrent(colls, Math.max(1, Math.round(opts.ops / 7)), (coll) => coll.find({ u: userOf(randomInt(USERS)) }).toArray());
    const findByFieldSerial = await timed(20, async () => (await first.find({ u: userOf(randomInt(USERS)) }).toArray()).length);
    console.log(`find by indexed field: ${findByField.perSecond}/s, ${findByFieldSerial.msPerQuery} ms alone`);
    const inc = await concurrent(colls, opts.ops, (coll) => coll.updateOne({ _id: docId(randomInt(total)) }, { $inc: { n: 1 } }));
    console.log(`updateOne $inc: ${inc.perSecond}/s`);
    const ids = (): string[] => Array.from({ length: 100 }, () => docId(randomInt(total)));
    const users = (): string[] => Array.from({ length: 100 }, () => userOf(randomInt(USERS)));
    const idIn = await timed(10, async () => (await first.find({ _id: { $in: ids() } }).toArray()).length);
    const fieldIn = await timed(5, async () => (await first.find({ u: { $in: users() } }, { projection: { _id: 1 } }).toArray()).length);
    return {
      documents: total,
      clients: opts.clients,
      insertMany: { docsPerSecond: Math.round(total / insert.seconds), callsPerSecond: insert.perSecond, docsPerCall: 100, seconds: insert.seconds },
      findOneById: findById,
      findByIndexedField: {
        docsPerQuery: findByFieldSerial.docs,
        concurrent: findByField,
        msPerQuerySerial: findByFieldSerial.msPerQuery,
        pushdown: await pushdown(first, { u: userOf(1) }),
      },
      updateOneInc: inc,
      idIn100: { ...idIn, pushdown: await pushdown(first, { _id: { $in: ids() } }) },
      fieldIn100: { ...fieldIn, pushdown: await pushdown(first, { u: { $in: users() } }) },
    };
  } finally {
    await first.db.dropDatabase().catch(() => {});
    await Promise.all(clients.map((c) => c.close()));
  }
}

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const own = opts.url ? undefined : await startPrivateMongo({ ...(opts.backend ? { backend: opts.backend } : {}) });
  const url = opts.url ?? (own as NonNullable<typeof own>).url;
  const backend = own ? `ferretdb/${own.backend}${own.postgres ? ` (postgresql ${own.postgres.version})` : ''}` : url;
  try {
    console.log(`store limits of ${backend}: ${opts.docs} docs, ${opts.clients} clients...`);
    const figures = await measure(`${url}/?directConnection=true`, opts);
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
