import type { Db } from 'mongodb';
import { bucketNames } from './mongo.js';

/**
 * Persistent messages in MongoDB, looked up by `_id`:
 *
 *   messages  one document per message (the payload is stored once)
 *   outbox    ids of stored messages not yet published to Kafka
 *
 * Who has which message, and what each device acknowledged or was sent on
 * connect, is in store/deliveryStore.ts (deliveries, acks, attempts).
 * The collector writes these (the dispatcher and pushers only read messages).
 */
export interface StoredMessage {
  _id: string;
  app: string;
  target: 'USER' | 'GROUP' | 'ALL';
  users?: string[];
  group?: string;
  payload: string;
  persistent: boolean;
  createdAt: Date;
  expiresAt: Date;
  collapseKey?: string;
  traceId: string;
  /** Broadcast task of a group or all message. */
  taskId?: string;
}

interface OutboxEntry {
  _id: string;
  at: Date;
}

const READ_CONCURRENCY = 16;
/**
 * Writes per bulk call. FerretDB 1.24 stalls on an update batch of about 100
 * operations (seen here: 95 took 250 ms, 100 never answered), so deletes go
 * in small batches.
 */
const UPDATE_CHUNK = 50;
/** Collections whose documents carry their own expiry. */
const EXPIRING: [string, string][] = [['messages', 'expiresAt'], ...bucketNames('idempotency').map((name): [string, string] => [name, 'exp'])];

export interface MessageStore {
  /** Creates indexes; resolves false when the server lacks TTL indexes (call sweepExpired instead). */
  ensureIndexes(): Promise<boolean>;
  /** Deletes expired messages and idempotency keys; for servers without TTL indexes. Returns how many. */
  sweepExpired(): Promise<number>;
  /** Stores a message and queues it in the outbox (inserts only). */
  store(msg: StoredMessage): Promise<void>;
  /** Takes back a message stored moments ago whose submission then failed. */
  unstore(id: string): Promise<void>;
  markPublished(ids: string[]): Promise<void>;
  /** Stored messages not yet on Kafka, oldest first, stored before `before`. */
  unpublished(before: Date, limit: number): Promise<StoredMessage[]>;
}

export function createMessageStore(db: Db): MessageStore {
  const messages = db.collection<StoredMessage>('messages');
  const outbox = db.collection<OutboxEntry>('outbox');

  const readMessages = async (ids: string[]): Promise<StoredMessage[]> => {
    const out: (StoredMessage | null)[] = new Array(ids.length).fill(null);
    let next = 0;
    const worker = async () => {
      while (next < ids.length) {
        const i = next++;
        out[i] = await messages.findOne({ _id: ids[i]! });
      }
    };
    await Promise.all(Array.from({ length: Math.min(READ_CONCURRENCY, ids.length) }, worker));
    return out.filter((m): m is StoredMessage => m !== null);
  };

  return {
    async ensureIndexes() {
      // MongoDB removes expired messages itself; FerretDB 1.x lacks TTL indexes
      // and the collector sweeps instead. Reads filter on expiry either way.
      // FerretDB never uses an index on a field other than _id, so without TTL indexes
      // none is created (64 idempotency parts would only cost start-up time).
      for (const [name, field] of EXPIRING) {
        try {
          await db.collection(name).createIndex({ [field]: 1 }, { expireAfterSeconds: 0 });
        } catch (err) {
          if ((err as { code?: number }).code !== 238) throw err; // NotImplemented
          return false;
        }
      }
      return true;
    },

    async sweepExpired() {
      let removed = 0;
      for (const [name, field] of EXPIRING) removed += (await db.collection(name).deleteMany({ [field]: { $lt: new Date() } })).deletedCount;
      return removed;
    },

    async store(msg) {
      await messages.insertOne(msg);
      try {
        await outbox.insertOne({ _id: msg._id, at: msg.createdAt });
      } catch (err) {
        // Nothing half-stored: a caller that sees this error was told "not accepted".
        await messages.deleteOne({ _id: msg._id }).catch(() => undefined);
        throw err;
      }
    },

    async unstore(id) {
      await outbox.deleteOne({ _id: id });
      await messages.deleteOne({ _id: id });
    },

    async markPublished(ids) {
      if (ids.length === 0) return;
      for (const part of chunks(ids, UPDATE_CHUNK)) {
        await outbox.bulkWrite(part.map((id) => ({ deleteOne: { filter: { _id: id } } })), { ordered: false });
      }
    },

    async unpublished(before, limit) {
      const pending = await outbox.find({ at: { $lt: before } }).sort({ _id: 1 }).limit(limit).toArray();
      const found = await readMessages(pending.map((p) => p._id));
      const missing = pending.filter((p) => !found.some((m) => m._id === p._id));
      if (missing.length > 0) await this.markPublished(missing.map((p) => p._id));
      return found;
    },
  };
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
