/**
 * Raw limits of a MongoDB-compatible server through the `mongodb` driver: the figures every
 * durable-path benchmark is reported against (issue #13). Used by `bench/storeLimits.ts` (alone)
 * and by the `durable` scenario (in the same run as the end-to-end figures).
 */
import { MongoClient, type Collection } from 'mongodb';
import { round } from './scenarioKit.js';

export interface StoreLimits {
  documents: number;
  clients: number;
  insertMany: { docsPerSecond: number; callsPerSecond: number; docsPerCall: number; seconds: number };
  findOneById: Rate;
  findByIndexedField: { docsPerQuery: number; concurrent: Rate; msPerQuerySerial: number; pushdown: boolean | undefined };
  /** `error`: the backend failed under concurrent updates (FerretDB/SQLite: SQLITE_BUSY); the rest still measured. */
  updateOneInc: Rate & { error?: string };
  idIn100: { msPerQuery: number; docs: number; pushdown: boolean | undefined };
  fieldIn100: { msPerQuery: number; docs: number; pushdown: boolean | undefined };
}

interface Rate {
  ops: number;
  seconds: number;
  perSecond: number;
}

interface Doc {
  _id: string;
  u: string;
  n: number;
  body: string;
}

/** Users: 1,000 distinct values of the indexed field, so each find by it returns ~docs/1000 documents. */
const USERS = 1000;
const docId = (i: number): string => `m${String(i).padStart(8, '0')}`;
const userOf = (i: number): string => `u${i % USERS}`;
const BODY = 'x'.repeat(200);

/** Runs `work(client, op)` for opsPerClient operations on each of `clients` concurrent clients; returns ops/s. */
async function concurrent(colls: Collection<Doc>[], opsPerClient: number, work: (coll: Collection<Doc>, op: number) => Promise<unknown>): Promise<Rate> {
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

export interface StoreLimitOptions {
  docs: number;
  clients: number;
  /** findOne and updateOne calls per client (fewer for a slow backend such as FerretDB/SQLite). */
  ops: number;
}

/**
 * The raw limits of the MongoDB-compatible server at `url` through the `mongodb` driver, in a
 * scratch database it drops afterwards: insertMany docs/s, findOne by _id/s, finds on an indexed
 * top-level field, updateOne $inc/s, and whether `$in` filters are pushed down.
 */
export async function measureStoreLimits(url: string, opts: StoreLimitOptions, log: (line: string) => void = console.log): Promise<StoreLimits> {
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
      coll.insertMany(
        Array.from({ length: 100 }, (_, k) => ({ _id: docId(call * 100 + k), u: userOf(call * 100 + k), n: 0, body: BODY })),
        {
          ordered: false,
        },
      ),
    );
    log(`insertMany: ${Math.round(total / insert.seconds)} docs/s`);
    const findById = await concurrent(colls, opts.ops, (coll) => coll.findOne({ _id: docId(randomInt(total)) }));
    log(`findOne by _id: ${findById.perSecond}/s`);
    const findByField = await concurrent(colls, Math.max(1, Math.round(opts.ops / 7)), (coll) => coll.find({ u: userOf(randomInt(USERS)) }).toArray());
    const findByFieldSerial = await timed(20, async () => (await first.find({ u: userOf(randomInt(USERS)) }).toArray()).length);
    log(`find by indexed field: ${findByField.perSecond}/s, ${findByFieldSerial.msPerQuery} ms alone`);
    let inc: StoreLimits['updateOneInc'];
    try {
      inc = await concurrent(colls, opts.ops, (coll) => coll.updateOne({ _id: docId(randomInt(total)) }, { $inc: { n: 1 } }));
      log(`updateOne $inc: ${inc.perSecond}/s`);
    } catch (err) {
      inc = { ops: 0, seconds: 0, perSecond: 0, error: (err as Error).message };
      log(`updateOne $inc failed with ${opts.clients} clients: ${inc.error}`);
    }
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
