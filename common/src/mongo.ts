import { MongoClient, type Db } from 'mongodb';

export type { Db };

export interface MongoHandle {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

/** Connects lazily: the driver retries server selection itself, so a late MongoDB only delays readiness. */
export function createMongo(url: string, dbName: string, appName: string): MongoHandle {
  const client = new MongoClient(url, {
    appName,
    serverSelectionTimeoutMS: 3000,
    connectTimeoutMS: 2000,
    maxPoolSize: 20,
  });
  return { client, db: client.db(dbName), close: () => client.close() };
}

/**
 * Collections split by a hash of the document `_id` into this many parts.
 * FerretDB 1.x on SQLite finds a document by `_id` through its index, but an
 * update or delete scans the whole table (measured: 18 updates/s on a 20,000
 * document collection, 407/s on the same documents over 64 collections), so
 * the store keeps every collection it updates small this way.
 */
export const COLLECTION_BUCKETS = 64;

/** FNV-1a of a string, 32 bits. */
function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Name of the part of collection `base` that holds the document `_id` (e.g. `inboxes_2a`). */
export function bucketName(base: string, id: string): string {
  return `${base}_${(fnv1a(id) % COLLECTION_BUCKETS).toString(16).padStart(2, '0')}`;
}

/** Every part of collection `base`, for sweeps and operator reads that cannot name an `_id`. */
export function bucketNames(base: string): string[] {
  return Array.from({ length: COLLECTION_BUCKETS }, (_, i) => `${base}_${i.toString(16).padStart(2, '0')}`);
}

/** Groups items by the part of `base` their `_id` falls in. */
export function byBucket<T>(base: string, items: T[], id: (item: T) => string): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const item of items) {
    const name = bucketName(base, id(item));
    let list = out.get(name);
    if (!list) out.set(name, (list = []));
    list.push(item);
  }
  return out;
}

/**
 * The indexes of the documents an unordered `insertMany` found already present (duplicate `_id`),
 * when that is all that went wrong; rethrows anything else. A lost connection can surface as a
 * bulk write error with an empty `writeErrors` list: that is a failure, never "all inserted".
 */
export function duplicateIndexes(err: unknown, attempted: number): number[] {
  const { writeErrors, insertedCount } = err as { writeErrors?: { index: number; code: number }[]; insertedCount?: number };
  if (!Array.isArray(writeErrors) || writeErrors.length === 0 || writeErrors.some((w) => w.code !== 11000)) throw err;
  if (typeof insertedCount === 'number' && insertedCount + writeErrors.length !== attempted) throw err;
  return writeErrors.map((w) => w.index);
}
