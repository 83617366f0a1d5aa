import type { Db, Collection } from 'mongodb';

/**
 * Persistent messages in MongoDB.
 *
 *   messages     one document per message (the payload is stored once)
 *   inbox        one document per (app, user, message): what each user still has
 *                to receive, with the devices that acknowledged it or gave up on it
 *   attempts     redeliveries per (device, message), to park what a device never acks
 *   idempotency  (app, idempotencyKey) -> message id
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
  /** False until the ingest records are on Kafka; the outbox sweeper publishes the rest. */
  published: boolean;
}

export interface InboxEntry {
  _id: string;
  app: string;
  user: string;
  msg: string;
  exp: Date;
  ck?: string;
  acked: string[];
  parked: string[];
}

interface Attempt {
  _id: string;
  n: number;
  exp: Date;
}

interface IdempotencyRecord {
  _id: string;
  msg: string;
  /** False while the first submission is being handled. */
  done: boolean;
  at: Date;
  exp: Date;
}

export type IdempotencyClaim =
  | { state: 'claimed' }
  | { state: 'duplicate'; id: string }
  | { state: 'in-progress'; id: string };

export const inboxId = (app: string, user: string, msg: string) => `${app}|${user}|${msg}`;
const deviceMsgId = (app: string, user: string, device: string, msg: string) => `${app}|${user}|${device}|${msg}`;
/** Collections with an expiry field, dependents before what they point at. */
const EXPIRING = [['inbox', 'exp'], ['attempts', 'exp'], ['idempotency', 'exp'], ['messages', 'expiresAt']] as const;
const IDEMPOTENCY_WINDOW_MS = 24 * 3600 * 1000;
/** A claim not completed within this long is considered abandoned. */
const IDEMPOTENCY_STALE_MS = 10_000;

export interface MessageStore {
  messages: Collection<StoredMessage>;
  /** Creates indexes; resolves false when the server lacks TTL indexes (call sweepExpired instead). */
  ensureIndexes(): Promise<boolean>;
  /** Deletes expired documents; for servers without TTL indexes. Returns how many. */
  sweepExpired(): Promise<number>;
  /**
   * Claims an idempotency key for `msgId`. A key whose first submission never
   * finished (crash, store failure) is taken over after a short grace period,
   * so it cannot stay stuck pointing at a message that was never accepted.
   */
  claimIdempotencyKey(app: string, key: string, msgId: string): Promise<IdempotencyClaim>;
  completeIdempotencyKey(app: string, key: string): Promise<void>;
  releaseIdempotencyKey(app: string, key: string): Promise<void>;
  /** Stores a message and its per-user inbox entries; a collapse key removes older undelivered entries. */
  store(msg: StoredMessage, users: string[]): Promise<void>;
  markPublished(ids: string[]): Promise<void>;
  /** Stored messages not yet on Kafka, oldest first, created before `before`. */
  unpublished(before: Date, limit: number): Promise<StoredMessage[]>;
  /** Undelivered, unexpired, unparked messages of a device in id (= time) order, after `afterId`. */
  loadUndelivered(app: string, user: string, device: string, afterId: string, limit: number): Promise<StoredMessage[]>;
  /** Counts one more delivery attempt per message; returns ids that reached `maxAttempts` (now parked). */
  recordAttempts(app: string, user: string, device: string, ids: string[], maxAttempts: number): Promise<string[]>;
  ack(app: string, user: string, device: string, ids: string[]): Promise<void>;
}

export function createMessageStore(db: Db): MessageStore {
  const messages = db.collection<StoredMessage>('messages');
  const inbox = db.collection<InboxEntry>('inbox');
  const attempts = db.collection<Attempt>('attempts');
  const idem = db.collection<IdempotencyRecord>('idempotency');
  let ttlSupported = true;

  return {
    messages,
    async ensureIndexes() {
      await inbox.createIndex({ app: 1, user: 1, msg: 1 });
      await inbox.createIndex({ app: 1, user: 1, ck: 1 });
      await messages.createIndex({ published: 1, _id: 1 });
      // TTL indexes clean up after expiry where the server has them (MongoDB);
      // elsewhere (FerretDB 1.x) sweepExpired() does it. Reads filter on expiry
      // either way, so late cleanup never means an expired delivery.
      ttlSupported = true;
      for (const [name, field] of EXPIRING) {
        const coll = db.collection(name);
        try {
          await coll.createIndex({ [field]: 1 }, { expireAfterSeconds: 0 });
        } catch (err) {
          if ((err as { code?: number }).code !== 238) throw err; // NotImplemented
          ttlSupported = false;
          await coll.createIndex({ [field]: 1 });
        }
      }
      return ttlSupported;
    },

    async sweepExpired() {
      const now = new Date();
      let removed = 0;
      for (const [name, field] of EXPIRING) {
        removed += (await db.collection(name).deleteMany({ [field]: { $lt: now } })).deletedCount;
      }
      return removed;
    },

    async claimIdempotencyKey(app, key, msgId) {
      const _id = `${app}|${key}`;
      const now = new Date();
      try {
        await idem.insertOne({ _id, msg: msgId, done: false, at: now, exp: new Date(now.getTime() + IDEMPOTENCY_WINDOW_MS) });
        return { state: 'claimed' };
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
      }
      const existing = await idem.findOne({ _id });
      if (!existing) return this.claimIdempotencyKey(app, key, msgId);
      if (existing.done) return { state: 'duplicate', id: existing.msg };
      if (now.getTime() - existing.at.getTime() < IDEMPOTENCY_STALE_MS) return { state: 'in-progress', id: existing.msg };
      const taken = await idem.updateOne({ _id, msg: existing.msg, done: false }, { $set: { msg: msgId, at: now } });
      return taken.modifiedCount === 1 ? { state: 'claimed' } : { state: 'in-progress', id: existing.msg };
    },

    async completeIdempotencyKey(app, key) {
      await idem.updateOne({ _id: `${app}|${key}` }, { $set: { done: true } });
    },

    async releaseIdempotencyKey(app, key) {
      await idem.deleteOne({ _id: `${app}|${key}` });
    },

    async store(msg, users) {
      if (msg.collapseKey && users.length > 0) {
        await inbox.deleteMany({ app: msg.app, user: { $in: users }, ck: msg.collapseKey });
      }
      await messages.insertOne(msg);
      if (users.length === 0) return;
      try {
        await inbox.insertMany(
          users.map((user) => ({
            _id: inboxId(msg.app, user, msg._id),
            app: msg.app,
            user,
            msg: msg._id,
            exp: msg.expiresAt,
            ...(msg.collapseKey ? { ck: msg.collapseKey } : {}),
            acked: [],
            parked: [],
          })),
          { ordered: false },
        );
      } catch (err) {
        // Nothing half-stored: a caller that sees this error was told "not accepted".
        await inbox.deleteMany({ msg: msg._id }).catch(() => undefined);
        await messages.deleteOne({ _id: msg._id }).catch(() => undefined);
        throw err;
      }
    },

    async markPublished(ids) {
      if (ids.length > 0) await messages.updateMany({ _id: { $in: ids } }, { $set: { published: true } });
    },

    unpublished(before, limit) {
      return messages.find({ published: false, createdAt: { $lt: before } }).sort({ _id: 1 }).limit(limit).toArray();
    },

    async loadUndelivered(app, user, device, afterId, limit) {
      const now = new Date();
      const entries = await inbox
        .find({ app, user, msg: { $gt: afterId }, exp: { $gt: now }, acked: { $ne: device }, parked: { $ne: device } })
        .sort({ msg: 1 })
        .limit(limit)
        .project<{ msg: string }>({ msg: 1 })
        .toArray();
      if (entries.length === 0) return [];
      const found = await messages.find({ _id: { $in: entries.map((e) => e.msg) }, expiresAt: { $gt: now } }).toArray();
      return found.sort((a, b) => (a._id < b._id ? -1 : 1));
    },

    async recordAttempts(app, user, device, ids, maxAttempts) {
      if (ids.length === 0) return [];
      const exp = new Date(Date.now() + 30 * 86_400_000);
      await attempts.bulkWrite(
        ids.map((id) => ({
          updateOne: { filter: { _id: deviceMsgId(app, user, device, id) }, update: { $inc: { n: 1 }, $set: { exp } }, upsert: true },
        })),
        { ordered: false },
      );
      const counted = await attempts.find({ _id: { $in: ids.map((id) => deviceMsgId(app, user, device, id)) } }).toArray();
      const exhausted = counted.filter((a) => a.n >= maxAttempts).map((a) => a._id.slice(a._id.lastIndexOf('|') + 1));
      if (exhausted.length > 0) {
        await inbox.updateMany({ _id: { $in: exhausted.map((id) => inboxId(app, user, id)) } }, { $addToSet: { parked: device } });
      }
      return exhausted;
    },

    async ack(app, user, device, ids) {
      if (ids.length === 0) return;
      await inbox.updateMany({ _id: { $in: ids.map((id) => inboxId(app, user, id)) } }, { $addToSet: { acked: device } });
    },
  };
}
