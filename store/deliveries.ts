import type { AnyBulkWriteOperation, Db } from 'mongodb';
import { duplicateIndexes } from '../common/src/mongo.js';
import { ackId, attemptId, deliveryId, userKey } from './keys.js';
import type { Limiter } from '../platform/concurrency.js';
import type { HotIndex, HotRead, HotRecord } from './hotIndex.js';

/**
 * `deliveries`: everything durable about a user's persistent messages, one
 * insert-only document per fact, all carrying the user key `u` (indexed), so
 * a device's state on connect is one equality find:
 *
 *   delivery  (user, message): inserted by the dispatcher before it routes the
 *             message, so a device that connects at any moment finds it either
 *             here or on the live path. `_id` app|user|msg. The user
 *             BROADCAST_INBOX holds the app's persistent broadcasts.
 *   ack       (user, message, device) acknowledged: `_id` app|user|msg|device|ack
 *   attempt   (user, message, device) delivered on connect by one connection:
 *             `_id` app|user|msg|device|connId; the count of them parks a
 *             message for the device at maxAttempts
 *
 * Writing a fact twice (a replay, a retried flush, two sockets or pushers of
 * one device) inserts the same `_id` and is ignored: no document is ever
 * updated, so concurrent writers can neither lose nor double anything, and a
 * batch of any size is one insertMany. Collapse keys, expiry, the size cap
 * and replayed duplicates are resolved when read (compactItems); what a read
 * finds stale (and the receipts of it) is deleted by `_id` afterwards. Every
 * document expires with its message (`e`; a TTL index on MongoDB).
 */
interface DeliveryDoc {
  _id: string;
  /** app|user, indexed: the only field documents are found by. */
  u: string;
  /** message id */
  m: string;
  /** the message's expiry (a Date, for MongoDB's TTL index) */
  e: Date;
  /** delivery: collapse key */
  k?: string;
  /** delivery: broadcast task, so a stopped broadcast is not delivered on connect */
  t?: string;
  /** delivery: the payload, when small (INLINE_PAYLOAD_CHARS), so a resume needs no read of the message */
  p?: string;
  /** delivery with a payload: the message's creation time */
  c?: Date;
  /** receipt: the device */
  v?: string;
  /** attempt: its number from 1 (a receipt without it is an ack) */
  n?: number;
}

/** One persistent message for one user (or the app's BROADCAST_INBOX). */
export interface Delivery {
  app: string;
  user: string;
  /** message id */
  m: string;
  /** expiry, ms since epoch */
  e: number;
  /** collapse key */
  k?: string;
  /** broadcast task id */
  t?: string;
  /** the payload: kept with the delivery when small, else read from `messages` on resume */
  p?: string;
  /** the message's creation time, ms since epoch (with `p`) */
  c?: number;
}

/** A delivery as read back: the per-user fields only. */
export type DeliveryItem = Omit<Delivery, 'app' | 'user'>;

export interface AckBatchEntry {
  app: string;
  user: string;
  device: string;
  ids: string[];
  /** each id's message expiry (ms since epoch): the ack is forgotten with its message */
  expiresAt: number[];
}

export interface AttemptEntry {
  app: string;
  user: string;
  device: string;
  /** message id */
  id: string;
  /** the connection that made the attempt: one attempt per connection and message */
  conn: string;
  /** this attempt's number, from 1, as far as the connection knows (the attempts read with the message, plus one) */
  attempt: number;
  /** the message's expiry, ms since epoch */
  expiresAt: number;
}

/** What a user's devices did with its messages: per device, acked ids and attempts per id. */
export type Receipts = Map<string, { acked: Set<string>; attempts: Map<string, number> }>;

export interface UserState {
  /** live deliveries, compacted, in id order */
  items: DeliveryItem[];
  receipts: Receipts;
}

/** A user's deliveries beyond this many are not delivered (the oldest go first) and are deleted when read. */
export const MAX_INBOX_ITEMS = 5000;
/**
 * Payloads up to this many characters are stored with each delivery (a
 * resume then reads one document set per user and no message); larger ones
 * are read from `messages` once per resume batch. It also bounds what one
 * user's read returns: MAX_INBOX_ITEMS x 2,048 characters.
 */
export const INLINE_PAYLOAD_CHARS = 2048;
/** Documents per insertMany call. */
const INSERT_CHUNK = 1000;
/** Stale documents deleted per read at most (the rest go on later reads or with their expiry). */
const MAX_DELETES_PER_READ = 500;
/** Deletes per bulkWrite: FerretDB 1.24 stalls on write batches of about 100 operations other than inserts. */
const DELETE_CHUNK = 50;

/**
 * A user's deliveries in delivery order with duplicates removed, older items
 * of a collapse key superseded, expired items dropped and the size capped.
 */
export function compactItems<T extends DeliveryItem>(items: T[], now = Date.now()): T[] {
  const byId = new Map<string, T>();
  for (const i of items) if (i.e > now) byId.set(i.m, i);
  const sorted = [...byId.values()].sort((a, b) => (a.m < b.m ? -1 : a.m > b.m ? 1 : 0));
  const newestOfKey = new Map<string, string>();
  for (const i of sorted) if (i.k) newestOfKey.set(i.k, i.m);
  return sorted.filter((i) => !i.k || newestOfKey.get(i.k) === i.m).slice(-MAX_INBOX_ITEMS);
}

/** A document as the hot index keeps it (dates as ms, no `_id` or `u`). */
const toRecord = (d: DeliveryDoc): HotRecord => ({
  m: d.m,
  e: d.e.getTime(),
  ...(d.k !== undefined ? { k: d.k } : {}),
  ...(d.t !== undefined ? { t: d.t } : {}),
  ...(d.p !== undefined ? { p: d.p } : {}),
  ...(d.c !== undefined ? { c: d.c.getTime() } : {}),
  ...(d.v !== undefined ? { v: d.v } : {}),
  ...(d.n !== undefined ? { n: d.n } : {}),
});

/**
 * `hot`: the Redis hot index (store/hotIndex.ts), kept by every write and delete here and read
 * first by `read`. Without it everything reads MongoDB; a process without it must not write
 * users whose index another process keeps (every service passes it).
 */
export function createDeliveries(db: Db, limit: Limiter, hot?: HotIndex) {
  const col = db.collection<DeliveryDoc>('deliveries');
  let deleting = false;
  let hits = 0;
  let finds = 0;

  /**
   * Unordered inserts in chunks through the limiter; duplicates ignored, anything else throws.
   * Then the hot index: the records go to the users' existing indexes (and their versions move);
   * after a failure, some documents may have landed, so the users' indexes are dropped.
   */
  const insertAll = async (docs: DeliveryDoc[]) => {
    const chunks: DeliveryDoc[][] = [];
    for (let i = 0; i < docs.length; i += INSERT_CHUNK) chunks.push(docs.slice(i, i + INSERT_CHUNK));
    try {
      await Promise.all(
        chunks.map((part) =>
          limit(async () => {
            try {
              await col.insertMany(part, { ordered: false });
            } catch (err) {
              duplicateIndexes(err, part.length);
            }
          }),
        ),
      );
    } catch (err) {
      await hot?.drop(docs.map((d) => d.u));
      throw err;
    }
    await hot?.written(docs.map((d) => ({ u: d.u, _id: d._id, r: toRecord(d) })));
  };

  /** One deletion at a time per process: a storm of reads must not turn into a storm of deletes. */
  const deleteStale = async (ids: string[], users: Set<string>): Promise<void> => {
    if (deleting) return;
    deleting = true;
    try {
      for (let i = 0; i < ids.length; i += DELETE_CHUNK) {
        const ops: AnyBulkWriteOperation<DeliveryDoc>[] = ids.slice(i, i + DELETE_CHUNK).map((_id) => ({ deleteOne: { filter: { _id } } }));
        await col.bulkWrite(ops, { ordered: false });
      }
    } catch {
      // Stale documents are never delivered; the next read or the expiry sweep retries.
    } finally {
      deleting = false;
      // Whatever was deleted, the users' indexes no longer mirror MongoDB.
      await hot?.drop(users);
    }
  };

  return {
    collection: col,

    /**
     * Inserts a batch of deliveries (one insertMany per INSERT_CHUNK, unordered).
     * Ids already present (a replay, a reset consumer group) are ignored; any
     * other failure throws, so the caller does not route what was not stored.
     */
    async append(batch: Delivery[]): Promise<void> {
      await insertAll(
        batch.map((d): DeliveryDoc => ({
          _id: deliveryId(d.app, d.user, d.m),
          u: userKey(d.app, d.user),
          m: d.m,
          e: new Date(d.e),
          ...(d.k ? { k: d.k } : {}),
          ...(d.t ? { t: d.t } : {}),
          ...(d.p !== undefined && d.c !== undefined && d.p.length <= INLINE_PAYLOAD_CHARS ? { p: d.p, c: new Date(d.c) } : {}),
        })),
      );
    },

    /** Stores the acks of many devices (one insertMany per INSERT_CHUNK ids). */
    async ack(batch: AckBatchEntry[]): Promise<void> {
      const docs: DeliveryDoc[] = [];
      for (const { app, user, device, ids, expiresAt } of batch) {
        const u = userKey(app, user);
        ids.forEach((m, i) => docs.push({ _id: ackId(app, user, device, m), u, m, v: device, e: new Date(expiresAt[i]!) }));
      }
      if (docs.length > 0) await insertAll(docs);
    },

    /** Stores one delivery attempt per entry; one a connection wrote before (a retried flush) is ignored. */
    async recordAttempts(batch: AttemptEntry[]): Promise<void> {
      if (batch.length === 0) return;
      await insertAll(
        batch.map((a): DeliveryDoc => ({ _id: attemptId(a.app, a.user, a.device, a.id, a.conn), u: userKey(a.app, a.user), m: a.id, v: a.device, n: a.attempt, e: new Date(a.expiresAt) })),
      );
    },

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
      // The hot index first; a user it misses (or all, when Redis fails) is read from MongoDB.
      let cached = new Map<string, HotRead>();
      if (hot?.enabled) {
        try {
          cached = await hot.read(users);
        } catch {
          cached = new Map();
        }
      }
      const loads: { u: string; version: string; records: { _id: string; r: HotRecord }[] }[] = [];
      const recordsOf = async (u: string): Promise<{ _id: string; r: HotRecord }[]> => {
        const c = cached.get(u);
        if (c && 'records' in c) {
          hits++;
          return c.records;
        }
        finds++;
        const records = (await limit(() => col.find({ u }).toArray())).map((d) => ({ _id: d._id, r: toRecord(d) }));
        if (c) loads.push({ u, version: c.version, records });
        return records;
      };
      await Promise.all(
        users.map(async (u) => {
            const docs = await recordsOf(u);
            const items: DeliveryItem[] = [];
            const receipts: Receipts = new Map();
            for (const { r: d } of docs) {
              if (d.v === undefined) {
                items.push({
                  m: d.m,
                  e: d.e,
                  ...(d.k ? { k: d.k } : {}),
                  ...(d.t ? { t: d.t } : {}),
                  ...(d.p !== undefined && d.c ? { p: d.p, c: d.c } : {}),
                });
                continue;
              }
              let r = receipts.get(d.v);
              if (!r) receipts.set(d.v, (r = { acked: new Set(), attempts: new Map() }));
              if (d.n === undefined) r.acked.add(d.m);
              else r.attempts.set(d.m, (r.attempts.get(d.m) ?? 0) + 1);
            }
            const live = compactItems(items, now);
            out.set(u, { items: live, receipts });
            if (live.length < items.length) {
              const kept = new Set(live.map((i) => i.m));
              // A receipt goes with its stale delivery; one of another user's message (a broadcast) stays.
              const gone = new Set(items.filter((i) => !kept.has(i.m)).map((i) => i.m));
              for (const d of docs) {
                if (gone.has(d.r.m) && stale.length < MAX_DELETES_PER_READ) {
                  stale.push(d._id);
                  staleUsers.add(u);
                }
              }
            }
        }),
      );
      if (loads.length > 0 && hot) await hot.install(loads);
      if (stale.length > 0) void deleteStale(stale, staleUsers);
      return out;
    },

    /** Users' reads served by the hot index so far (tests, metrics). */
    hotHits: () => hits,
    /** Users' reads that went to MongoDB so far (metrics). */
    mongoReads: () => finds,

    /** Ids of every stored delivery of (app, user), stale ones included, in id order (operators, tests). */
    async ids(app: string, user: string): Promise<string[]> {
      const docs = await col.find({ u: userKey(app, user) }, { projection: { m: 1, v: 1 } }).toArray();
      return docs.filter((d) => d.v === undefined).map((d) => d.m).sort();
    },

    /** Deletes the deliveries of (app, user), keeping its devices' acks and attempts; returns how many. */
    async forget(app: string, user: string): Promise<number> {
      const docs = await col.find({ u: userKey(app, user) }, { projection: { _id: 1, v: 1 } }).toArray();
      const ids = docs.filter((d) => d.v === undefined).map((d) => d._id);
      let deleted = 0;
      try {
        for (let i = 0; i < ids.length; i += DELETE_CHUNK) {
          deleted += (await col.bulkWrite(ids.slice(i, i + DELETE_CHUNK).map((_id) => ({ deleteOne: { filter: { _id } } })), { ordered: false })).deletedCount;
        }
      } finally {
        await hot?.drop([userKey(app, user)]);
      }
      return deleted;
    },
  };
}

export type Deliveries = ReturnType<typeof createDeliveries>;
