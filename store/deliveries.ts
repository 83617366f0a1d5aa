import type { Collection, Db } from 'mongodb';
import { duplicateIndexes } from '../platform/mongo.js';
import { userKey } from './keys.js';
import type { Limiter } from '../platform/concurrency.js';
import type { HotIndex, HotRead, HotRecord } from './hotIndex.js';
import {
  ackDocs,
  attemptDoc,
  deliveryDoc,
  toRecord,
  userStateOf,
  type AckBatchEntry,
  type AttemptEntry,
  type Delivery,
  type DeliveryDoc,
  type UserState,
} from './deliveryRecords.js';

// The data model (documents, what a read returns, compaction) is in deliveryRecords.ts.
export { compactItems, INLINE_PAYLOAD_CHARS, MAX_INBOX_ITEMS } from './deliveryRecords.js';
export type { AckBatchEntry, AttemptEntry, Delivery, DeliveryItem, Receipts, UserState } from './deliveryRecords.js';

/** Documents per insertMany call. */
const INSERT_CHUNK = 1000;
/** Stale documents deleted per read at most (the rest go on later reads or with their expiry). */
const MAX_DELETES_PER_READ = 500;
/** Deletes per bulkWrite: FerretDB 1.24 stalls on write batches of about 100 operations other than inserts. */
const DELETE_CHUNK = 50;

/** Deletes documents by `_id` in chunks of DELETE_CHUNK; resolves with how many were deleted. */
async function deleteIds(col: Collection<DeliveryDoc>, ids: string[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < ids.length; i += DELETE_CHUNK) {
    deleted += (
      await col.bulkWrite(
        ids.slice(i, i + DELETE_CHUNK).map((_id) => ({ deleteOne: { filter: { _id } } })),
        { ordered: false },
      )
    ).deletedCount;
  }
  return deleted;
}

/**
 * The `deliveries` collection (documents in deliveryRecords.ts). `hot`: the Redis hot index
 * (store/hotIndex.ts), kept by every write and delete here and read first by `read`. Without
 * it everything reads MongoDB; a process without it must not write users whose index another
 * process keeps (every service passes it).
 */
export class Deliveries {
  readonly collection: Collection<DeliveryDoc>;
  private deleting = false;
  private hits = 0;
  private finds = 0;

  constructor(
    db: Db,
    private readonly limit: Limiter,
    private readonly hot?: HotIndex,
  ) {
    this.collection = db.collection<DeliveryDoc>('deliveries');
  }

  /**
   * Inserts a batch of deliveries (one insertMany per INSERT_CHUNK, unordered).
   * Ids already present (a replay, a reset consumer group) are ignored; any
   * other failure throws, so the caller does not route what was not stored.
   */
  async append(batch: Delivery[]): Promise<void> {
    await this.insertAll(batch.map(deliveryDoc));
  }

  /** Stores the acks of many devices (one insertMany per INSERT_CHUNK ids). */
  async ack(batch: AckBatchEntry[]): Promise<void> {
    const docs = ackDocs(batch);
    if (docs.length > 0) await this.insertAll(docs);
  }

  /** Stores one delivery attempt per entry; one a connection wrote before (a retried flush) is ignored. */
  async recordAttempts(batch: AttemptEntry[]): Promise<void> {
    if (batch.length > 0) await this.insertAll(batch.map(attemptDoc));
  }

  /**
   * Each user key's (app|user) live deliveries, compacted, and its devices'
   * receipts: one indexed equality find per distinct key. Stale deliveries
   * (expired, superseded, over the cap) and their receipts are deleted by
   * `_id` in the background, a bounded number per call.
   */
  async read(keys: string[], now = Date.now()): Promise<Map<string, UserState>> {
    const out = new Map<string, UserState>();
    const stale: string[] = [];
    const staleUsers = new Set<string>();
    const users = [...new Set(keys)];
    const cached = await this.hotRead(users);
    const loads: { u: string; version: string; records: { _id: string; r: HotRecord }[] }[] = [];
    const recordsOf = async (u: string): Promise<{ _id: string; r: HotRecord }[]> => {
      const c = cached.get(u);
      if (c && 'records' in c) {
        this.hits++;
        return c.records;
      }
      this.finds++;
      const records = (await this.limit(() => this.collection.find({ u }).toArray())).map((d) => ({ _id: d._id, r: toRecord(d) }));
      if (c) loads.push({ u, version: c.version, records });
      return records;
    };
    await Promise.all(
      users.map(async (u) => {
        const { state, stale: gone } = userStateOf(await recordsOf(u), now, MAX_DELETES_PER_READ - stale.length);
        out.set(u, state);
        if (gone.length > 0) {
          stale.push(...gone);
          staleUsers.add(u);
        }
      }),
    );
    if (loads.length > 0 && this.hot) await this.hot.install(loads);
    if (stale.length > 0) void this.deleteStale(stale, staleUsers);
    return out;
  }

  /** Users' reads served by the hot index so far (tests, metrics). */
  hotHits(): number {
    return this.hits;
  }

  /** Users' reads that went to MongoDB so far (metrics). */
  mongoReads(): number {
    return this.finds;
  }

  /** Ids of every stored delivery of (app, user), stale ones included, in id order (operators, tests). */
  async ids(app: string, user: string): Promise<string[]> {
    const docs = await this.collection.find({ u: userKey(app, user) }, { projection: { m: 1, v: 1 } }).toArray();
    return docs
      .filter((d) => d.v === undefined)
      .map((d) => d.m)
      .sort();
  }

  /** Deletes the deliveries of (app, user), keeping its devices' acks and attempts; returns how many. */
  async forget(app: string, user: string): Promise<number> {
    const docs = await this.collection.find({ u: userKey(app, user) }, { projection: { _id: 1, v: 1 } }).toArray();
    const ids = docs.filter((d) => d.v === undefined).map((d) => d._id);
    try {
      return await deleteIds(this.collection, ids);
    } finally {
      await this.hot?.drop([userKey(app, user)]);
    }
  }

  /** The hot index's answer for each user; empty (everything from MongoDB) without one or when Redis fails. */
  private async hotRead(users: string[]): Promise<Map<string, HotRead>> {
    if (!this.hot?.enabled) return new Map();
    try {
      return await this.hot.read(users);
    } catch {
      return new Map();
    }
  }

  /**
   * Unordered inserts in chunks through the limiter; duplicates ignored, anything else throws.
   * Then the hot index: the records go to the users' existing indexes (and their versions move);
   * after a failure, some documents may have landed, so the users' indexes are dropped.
   */
  private async insertAll(docs: DeliveryDoc[]): Promise<void> {
    const chunks: DeliveryDoc[][] = [];
    for (let i = 0; i < docs.length; i += INSERT_CHUNK) chunks.push(docs.slice(i, i + INSERT_CHUNK));
    const insert = async (part: DeliveryDoc[]) => {
      try {
        await this.collection.insertMany(part, { ordered: false });
      } catch (err) {
        duplicateIndexes(err, part.length);
      }
    };
    try {
      await Promise.all(chunks.map((part) => this.limit(() => insert(part))));
    } catch (err) {
      await this.hot?.drop(docs.map((d) => d.u));
      throw err;
    }
    await this.hot?.written(docs.map((d) => ({ u: d.u, _id: d._id, r: toRecord(d) })));
  }

  /** One deletion at a time per process: a storm of reads must not turn into a storm of deletes. */
  private async deleteStale(ids: string[], users: Set<string>): Promise<void> {
    if (this.deleting) return;
    this.deleting = true;
    try {
      await deleteIds(this.collection, ids);
    } catch {
      // Stale documents are never delivered; the next read or the expiry sweep retries.
    } finally {
      this.deleting = false;
      // Whatever was deleted, the users' indexes no longer mirror MongoDB.
      await this.hot?.drop(users);
    }
  }
}

export function createDeliveries(db: Db, limit: Limiter, hot?: HotIndex): Deliveries {
  return new Deliveries(db, limit, hot);
}
