import type { AnyBulkWriteOperation, Db } from 'mongodb';
import { duplicateIndexes } from '../common/src/mongo.js';
import { deliveryId, userKey } from './keys.js';
import type { Limiter } from './limiter.js';

/**
 * `deliveries`: one document per (app, user, persistent message), inserted by
 * the dispatcher before it routes the message, so a device that connects at
 * any moment finds the message either here or on the live path. The user
 * BROADCAST_INBOX holds the app's persistent broadcasts. Insert-only: replays
 * insert the same `_id` again and are ignored, so there is no document two
 * writers update. Collapse keys, expiry, the size cap and replayed duplicates
 * are resolved when read (compactItems); what a read finds stale is deleted
 * by `_id` afterwards.
 */
interface DeliveryDoc {
  /** app|user|message */
  _id: string;
  /** app|user, indexed: the only field deliveries are found by. */
  u: string;
  /** message id */
  m: string;
  /** expiry (a Date, so MongoDB's TTL index removes it) */
  e: Date;
  /** collapse key */
  k?: string;
  /** broadcast task (in BROADCAST_INBOX), so a stopped broadcast is not delivered on connect */
  t?: string;
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
}

/** A delivery as read back: the per-user fields only. */
export type DeliveryItem = Omit<Delivery, 'app' | 'user'>;

/** A user's deliveries beyond this many are not delivered (the oldest go first) and are deleted when read. */
export const MAX_INBOX_ITEMS = 5000;
/** Documents per insertMany call. */
const INSERT_CHUNK = 1000;
/** Stale deliveries deleted per read at most (the rest go on later reads or with their expiry). */
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

export function createDeliveries(db: Db, limit: Limiter) {
  const col = db.collection<DeliveryDoc>('deliveries');
  let deleting = false;

  /** One deletion at a time per process: a storm of reads must not turn into a storm of deletes. */
  const deleteStale = async (ids: string[]): Promise<void> => {
    if (deleting) return;
    deleting = true;
    try {
      for (let i = 0; i < ids.length; i += DELETE_CHUNK) {
        const ops: AnyBulkWriteOperation<DeliveryDoc>[] = ids.slice(i, i + DELETE_CHUNK).map((_id) => ({ deleteOne: { filter: { _id } } }));
        await col.bulkWrite(ops, { ordered: false });
      }
    } catch {
      // Stale deliveries are never delivered; the next read or the expiry sweep retries.
    } finally {
      deleting = false;
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
      const docs = batch.map((d): DeliveryDoc => ({
        _id: deliveryId(d.app, d.user, d.m),
        u: userKey(d.app, d.user),
        m: d.m,
        e: new Date(d.e),
        ...(d.k ? { k: d.k } : {}),
        ...(d.t ? { t: d.t } : {}),
      }));
      const chunks: DeliveryDoc[][] = [];
      for (let i = 0; i < docs.length; i += INSERT_CHUNK) chunks.push(docs.slice(i, i + INSERT_CHUNK));
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
    },

    /**
     * The live deliveries of each user key (app|user), compacted, by key; one
     * indexed equality find per distinct key. Stale ones (expired, superseded,
     * over the cap) are deleted by `_id` in the background, a bounded number per call.
     */
    async read(keys: string[], now = Date.now()): Promise<Map<string, DeliveryItem[]>> {
      const out = new Map<string, DeliveryItem[]>();
      const stale: string[] = [];
      await Promise.all(
        [...new Set(keys)].map((u) =>
          limit(async () => {
            const docs = await col.find({ u }).toArray();
            const items = docs.map((d): DeliveryItem => ({ m: d.m, e: d.e.getTime(), ...(d.k ? { k: d.k } : {}), ...(d.t ? { t: d.t } : {}) }));
            const live = compactItems(items, now);
            out.set(u, live);
            if (live.length < docs.length) {
              const kept = new Set(live.map((i) => i.m));
              for (const d of docs) if (!kept.has(d.m) && stale.length < MAX_DELETES_PER_READ) stale.push(d._id);
            }
          }),
        ),
      );
      if (stale.length > 0) void deleteStale(stale);
      return out;
    },

    /** Ids of every stored delivery of (app, user), stale ones included, in id order (operators, tests). */
    async ids(app: string, user: string): Promise<string[]> {
      return (await col.find({ u: userKey(app, user) }, { projection: { m: 1 } }).toArray()).map((d) => d.m).sort();
    },

    /** Deletes every delivery of (app, user): one indexed equality delete. */
    async forget(app: string, user: string): Promise<number> {
      return (await col.deleteMany({ u: userKey(app, user) })).deletedCount;
    },

    /** Whether (app, user) has a delivery of the message (for traces). */
    async has(app: string, user: string, msgId: string): Promise<boolean> {
      return (await col.findOne({ _id: deliveryId(app, user, msgId) }, { projection: { _id: 1 } })) !== null;
    },
  };
}

export type Deliveries = ReturnType<typeof createDeliveries>;
