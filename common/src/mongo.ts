import { MongoClient, type Collection, type Db } from 'mongodb';

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
 * Whether a string can be stored and matched at all. PostgreSQL (under FerretDB)
 * cannot hold U+0000 in text: an insert carrying one fails, and so does a find
 * whose equality filter on an indexed field carries one. No stored value has
 * one, so a filter with one matches nothing; callers answer that without asking.
 */
export const storable = (s: string): boolean => !s.includes('\u0000');

/** `s` with every U+0000 replaced by U+FFFD, for free text (reasons, messages) that must be stored. */
export const storableText = (s: string): string => (storable(s) ? s : s.replaceAll('\u0000', '\ufffd'));

/**
 * Creates a TTL index on `field` (documents expire at the date it holds); resolves
 * false when the server lacks TTL indexes (FerretDB 1.x: NotImplemented), so the
 * caller sweeps expired documents itself.
 */
export async function ensureExpiryIndex(coll: Pick<Collection, 'createIndex'>, field: string): Promise<boolean> {
  try {
    await coll.createIndex({ [field]: 1 }, { expireAfterSeconds: 0 });
    return true;
  } catch (err) {
    if ((err as { code?: number }).code !== 238) throw err;
    return false;
  }
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
