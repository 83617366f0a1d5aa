import type { Collection, Db, Document } from 'mongodb';
import { BROADCAST_INBOX } from './tokens.js';
import { bucketName, bucketNames, byBucket, duplicateIndexes } from './mongo.js';

/**
 * Persistent messages in MongoDB, laid out so that every hot-path operation
 * is a lookup by `_id` (FerretDB, our local server, only pushes `_id`
 * equality down to its storage; MongoDB is fast either way):
 *
 *   messages  one document per message (the payload is stored once)
 *   outbox    ids of stored messages not yet published to Kafka
 *   inboxes_XX one document per (app, user): the ids, expiry and collapse key
 *             of the user's recent persistent messages, in arrival order; the
 *             "user" #all holds the app's persistent broadcasts
 *   acks_XX   one document per (app, user, device): the ids it acknowledged
 *   tries_XX  one document per (app, user, device): deliveries on connect per id
 *
 * The collections that are updated (inboxes, acks, tries, and the idempotency
 * keys) are split in COLLECTION_BUCKETS parts by a hash of `_id` (XX = 00-3f,
 * see bucketName in mongo.ts): FerretDB finds a document by `_id` through its
 * index, but runs an update or delete as a scan of the whole SQLite table, so
 * an update cost grows with the collection (18 updates/s at 20,000 documents
 * in one collection, 407/s over 64). Use inboxCollection/deviceCollection to
 * reach a document.
 *
 * A connect of a device with nothing stored costs two reads (its inbox and the
 * #all inbox); with items, two more (acks, tries) plus one per undelivered message.
 *
 * Every document has a single writer, because FerretDB 1.x applies updates
 * as read-modify-write without isolation (two concurrent $push to one
 * document can lose one): the collector only inserts; an inbox is written
 * only by the dispatcher that owns the user's push.ingest partition (records
 * are keyed app|user); acks and tries are written by the pusher holding the
 * device, one write at a time per document.
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

export interface InboxItem {
  /** message id */
  m: string;
  /** expiry, ms since epoch */
  e: number;
  /** collapse key */
  k?: string;
  /** broadcast task (in the #all inbox), so a stopped broadcast is not delivered on connect */
  t?: string;
}

export interface Inbox {
  _id: string;
  items: InboxItem[];
}

interface AckState {
  _id: string;
  acked: string[];
}

interface TryState {
  _id: string;
  /** Deliveries on connect per message id (ids are [0-9A-Z], safe as field names). */
  n: Record<string, number>;
}

interface OutboxEntry {
  _id: string;
  at: Date;
}

export const inboxKey = (app: string, user: string) => `${app}|${user}`;
export const deviceKey = (app: string, user: string, device: string) => `${app}|${user}|${device}`;

/** The part of `inboxes` that holds a user's inbox (`user` = BROADCAST_INBOX for the app's broadcasts). */
export function inboxCollection<T extends Document = Inbox>(db: Db, app: string, user: string): Collection<T> {
  return db.collection<T>(bucketName('inboxes', inboxKey(app, user)));
}

/** The part of `acks` or `tries` that holds a device's document. */
export function deviceCollection<T extends Document = Document>(db: Db, base: 'acks' | 'tries', app: string, user: string, device: string): Collection<T> {
  return db.collection<T>(bucketName(base, deviceKey(app, user, device)));
}

/** An inbox keeps at most this many items; the oldest go first. */
export const MAX_INBOX_ITEMS = 5000;
const READ_CONCURRENCY = 16;
/**
 * Writes per bulk call. FerretDB 1.24 stalls on an update batch of about 100
 * operations (seen here: 95 took 250 ms, 100 never answered), so updates go
 * in small batches; plain inserts are fine in larger ones.
 */
const UPDATE_CHUNK = 50;
const INSERT_CHUNK = 500;
/** A device's ack list is pruned to the ids still in its inbox past this size. */
const PRUNE_ACKS_AT = 2 * MAX_INBOX_ITEMS;
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
  /**
   * Appends items to users' inboxes (dispatcher only: it is the single writer
   * of an inbox). An item with a collapse key replaces older items with the
   * same key; `compact` also drops expired and duplicate items and caps size.
   */
  appendToInboxes(entries: { app: string; user: string; items: InboxItem[]; compact: boolean }[]): Promise<void>;
  markPublished(ids: string[]): Promise<void>;
  /** Stored messages not yet on Kafka, oldest first, stored before `before`. */
  unpublished(before: Date, limit: number): Promise<StoredMessage[]>;
  /** Undelivered, unexpired, unparked messages of a device in id (= time) order, after `afterId`. */
  loadUndelivered(
    app: string,
    user: string,
    device: string,
    opts: { afterId: string; limit: number; maxAttempts: number; stoppedTasks?: (taskIds: string[]) => Promise<Set<string>> },
  ): Promise<StoredMessage[]>;
  /** Counts one more delivery on connect per message; returns ids that reached `maxAttempts` (now parked). */
  recordAttempts(app: string, user: string, device: string, ids: string[], maxAttempts: number): Promise<string[]>;
  ack(app: string, user: string, device: string, ids: string[]): Promise<void>;
  /** What a device has acknowledged and how often each message was tried (for operators and tests). */
  deviceState(app: string, user: string, device: string): Promise<{ acked: string[]; tries: Record<string, number> }>;
}

export function createMessageStore(db: Db): MessageStore {
  const messages = db.collection<StoredMessage>('messages');
  const outbox = db.collection<OutboxEntry>('outbox');
  const inbox = (app: string, user: string) => inboxCollection<Inbox>(db, app, user);
  const inboxById = (id: string) => db.collection<Inbox>(bucketName('inboxes', id));
  const acks = (id: string) => db.collection<AckState>(bucketName('acks', id));
  const tries = (id: string) => db.collection<TryState>(bucketName('tries', id));

  /** Adds acked ids to a device's list (pruned now and then); callers serialise per device. */
  const writeAcks = async (app: string, user: string, _id: string, ids: string[]): Promise<void> => {
    // Now and then (amortised), keep only ids still in the inbox: the rest can
    // never be delivered again, and the list would otherwise grow forever.
    if (Math.random() < 1 / 50) {
      const [own, broadcasts, full] = await Promise.all([
        inbox(app, user).findOne({ _id: inboxKey(app, user) }),
        inbox(app, BROADCAST_INBOX).findOne({ _id: inboxKey(app, BROADCAST_INBOX) }),
        acks(_id).findOne({ _id }),
      ]);
      if (full && full.acked.length > PRUNE_ACKS_AT) {
        const live = new Set([...(own?.items ?? []), ...(broadcasts?.items ?? [])].map((i) => i.m));
        await acks(_id).updateOne({ _id }, { $set: { acked: [...new Set([...full.acked, ...ids])].filter((id) => live.has(id)) } });
        return;
      }
    }
    await upsertRetrying(() => acks(_id).updateOne({ _id }, { $addToSet: { acked: { $each: ids } } }, { upsert: true }));
  };

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

    async appendToInboxes(entries) {
      const plainSet = new Set(entries.filter((e) => !e.compact && !e.items.some((i) => i.k)));
      const plain = [...plainSet];
      const idOf = (e: (typeof entries)[number]) => inboxKey(e.app, e.user);
      // Most recipients of a big list have no inbox yet: create those in bulk
      // (cheap, one insert per collection part), then append to the ones that exist.
      const existing: typeof plain = [];
      const inserts = [...byBucket('inboxes', plain, idOf)].flatMap(([name, group]) => chunks(group, INSERT_CHUNK).map((part) => ({ name, part })));
      await inParallel(inserts, WRITE_CONCURRENCY, async ({ name, part }) => {
        try {
          await db.collection<Inbox>(name).insertMany(part.map((e) => ({ _id: idOf(e), items: e.items })), { ordered: false });
        } catch (err) {
          for (const i of duplicateIndexes(err, part.length)) existing.push(part[i]!);
        }
      });
      // Update batches go through one limiter per process (WRITE_CONCURRENCY at once): FerretDB
      // (SQLite) stalled for minutes when the dispatcher's partitions sent 4 x 50 updates at once
      // to one big table; on the small collection parts an update is short.
      const updates = [...byBucket('inboxes', existing, idOf)].flatMap(([name, group]) => chunks(group, UPDATE_CHUNK).map((part) => ({ name, part })));
      await Promise.all(
        updates.map(({ name, part }) =>
          updateSlots(() =>
            db.collection<Inbox>(name).bulkWrite(
              part.map((e) => ({ updateOne: { filter: { _id: idOf(e) }, update: { $push: { items: { $each: e.items } } }, upsert: true } })),
              { ordered: false },
            ),
          ),
        ),
      );
      for (const e of entries.filter((x) => !plainSet.has(x))) {
        const _id = idOf(e);
        const doc = await inboxById(_id).findOne({ _id });
        const items = compactItems([...(doc?.items ?? []), ...e.items]);
        await inboxById(_id).updateOne({ _id }, { $set: { items } }, { upsert: true });
      }
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

    async loadUndelivered(app, user, device, { afterId, limit, maxAttempts, stoppedTasks }) {
      const key = deviceKey(app, user, device);
      // The user's own inbox plus the app's persistent broadcasts; most devices have
      // nothing stored, so their acks and tries are read only when there is something.
      const [own, broadcasts] = await Promise.all([
        inbox(app, user).findOne({ _id: inboxKey(app, user) }),
        inbox(app, BROADCAST_INBOX).findOne({ _id: inboxKey(app, BROADCAST_INBOX) }),
      ]);
      const now = Date.now();
      const live = compactItems([...(own?.items ?? []), ...(broadcasts?.items ?? [])], now).filter((i) => i.m > afterId);
      if (live.length === 0) return [];
      const [ackDoc, tryDoc] = await Promise.all([acks(key).findOne({ _id: key }), tries(key).findOne({ _id: key })]);
      const acked = new Set(ackDoc?.acked ?? []);
      const n = tryDoc?.n ?? {};
      let due = live.filter((i) => !acked.has(i.m) && (n[i.m] ?? 0) < maxAttempts);
      const taskIds = [...new Set(due.flatMap((i) => (i.t ? [i.t] : [])))];
      if (taskIds.length > 0 && stoppedTasks) {
        const stopped = await stoppedTasks(taskIds);
        due = due.filter((i) => !i.t || !stopped.has(i.t));
      }
      due = due.slice(0, limit);
      const found = await readMessages(due.map((i) => i.m));
      return found.filter((m) => m.expiresAt.getTime() > now);
    },

    async recordAttempts(app, user, device, ids, maxAttempts) {
      if (ids.length === 0) return [];
      const _id = deviceKey(app, user, device);
      return oneAtATime(`tries|${_id}`, async () => {
        await upsertRetrying(() => tries(_id).updateOne({ _id }, { $inc: Object.fromEntries(ids.map((id) => [`n.${id}`, 1])) }, { upsert: true }));
        const doc = await tries(_id).findOne({ _id });
        return ids.filter((id) => (doc?.n?.[id] ?? 0) >= maxAttempts);
      });
    },

    async ack(app, user, device, ids) {
      if (ids.length === 0) return;
      const _id = deviceKey(app, user, device);
      return oneAtATime(`acks|${_id}`, () => writeAcks(app, user, _id, ids));
    },

    async deviceState(app, user, device) {
      const key = deviceKey(app, user, device);
      const [a, t] = await Promise.all([acks(key).findOne({ _id: key }), tries(key).findOne({ _id: key })]);
      return { acked: a?.acked ?? [], tries: t?.n ?? {} };
    },
  };
}

/**
 * An inbox in delivery order with duplicates (replays) and older items of a
 * collapse key removed, expired items dropped and the size capped.
 */
export function compactItems(items: InboxItem[], now = Date.now()): InboxItem[] {
  const byId = new Map<string, InboxItem>();
  for (const i of items) if (i.e > now) byId.set(i.m, i);
  const sorted = [...byId.values()].sort((a, b) => (a.m < b.m ? -1 : a.m > b.m ? 1 : 0));
  const newestOfKey = new Map<string, string>();
  for (const i of sorted) if (i.k) newestOfKey.set(i.k, i.m);
  return sorted.filter((i) => !i.k || newestOfKey.get(i.k) === i.m).slice(-MAX_INBOX_ITEMS);
}

/** Writes of one kind sent to FerretDB at the same time by this process. */
const WRITE_CONCURRENCY = 4;

/** Runs `fn` over `items`, at most `limit` at a time. */
async function inParallel<T>(items: T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** A process-wide limiter: at most WRITE_CONCURRENCY inbox update batches at once. */
const waiting: (() => void)[] = [];
let running = 0;
async function updateSlots<T>(fn: () => Promise<T>): Promise<T> {
  // A freed slot passes straight to the next waiter, so the count never exceeds the limit.
  if (running >= WRITE_CONCURRENCY) await new Promise<void>((resolve) => waiting.push(resolve));
  else running++;
  try {
    return await fn();
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function chunks<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/**
 * Runs writes to one document one after another within this process: FerretDB
 * does not isolate concurrent updates of a document (one of two `$inc`s can be
 * lost). Keys are dropped when their queue drains.
 */
const queues = new Map<string, Promise<unknown>>();
function oneAtATime<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queues.get(key) ?? Promise.resolve();
  const run = prev.then(fn, fn);
  const tail = run.catch(() => undefined);
  queues.set(key, tail);
  void tail.then(() => {
    if (queues.get(key) === tail) queues.delete(key);
  });
  return run;
}

/** Two first writes to a new document can both try to insert it; the loser retries as an update. */
async function upsertRetrying<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if ((err as { code?: number }).code !== 11000) throw err;
    return write();
  }
}
