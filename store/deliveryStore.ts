import type { Db } from 'mongodb';
import type { StoredMessage } from '../common/src/messageStore.js';
import { BROADCAST_INBOX } from '../common/src/tokens.js';
import { compactItems, createDeliveries, type Delivery, type DeliveryItem } from './deliveries.js';
import { createDevices, type AckBatchEntry, type AttemptEntry, type DeviceRef } from './devices.js';
import { userKey } from './keys.js';
import { createLimiter } from './limiter.js';

/**
 * The durable delivery state of persistent messages: which users have which
 * messages (`deliveries`), what each device acknowledged (`acks`) and how
 * often each message was delivered to it on connect (`attempts`). Every
 * write is an insert of a document nobody else writes differently, every
 * read an equality find on an indexed top-level field or a lookup by `_id`
 * (what FerretDB pushes down to PostgreSQL; MongoDB is fast either way), and
 * every function takes a batch. Nothing outside store/ touches these
 * collections. Everything here is in MongoDB: Redis holds none of it.
 */

export interface PendingRequest extends DeviceRef {
  /** Only messages with a greater id (the previous page's last). */
  afterId: string;
  /** Messages at most. */
  limit: number;
}

export interface PendingMessage {
  message: StoredMessage;
  /** Deliveries on connect so far (the next one is attempt + 1). */
  attempts: number;
}

export interface PendingOptions {
  /** A message delivered on connect this often without an ack is parked for the device. */
  maxAttempts: number;
  /** Which of these broadcast tasks an operator stopped (their messages are not delivered). */
  stoppedTasks?: (taskIds: string[]) => Promise<Set<string>>;
  now?: number;
}

/** Store reads and writes in flight at once from this process (the driver's pool is 20 connections). */
const STORE_CONCURRENCY = 16;
/** Calls waiting for the limiter before further ones fail instead of queueing. */
const MAX_WAITING = 100_000;

export function createDeliveryStore(db: Db) {
  const limit = createLimiter(STORE_CONCURRENCY, MAX_WAITING);
  const deliveries = createDeliveries(db, limit);
  const devices = createDevices(db, limit);
  const messages = db.collection<StoredMessage>('messages');
  const EXPIRING = [deliveries.collection, devices.acks, devices.attempts];

  /** Message bodies by id, each read once per call whatever number of devices wants it. */
  const readMessages = async (ids: Iterable<string>): Promise<Map<string, StoredMessage>> => {
    const out = new Map<string, StoredMessage>();
    await Promise.all(
      [...new Set(ids)].map((_id) =>
        limit(async () => {
          const m = await messages.findOne({ _id });
          if (m) out.set(_id, m);
        }),
      ),
    );
    return out;
  };

  return {
    /**
     * Creates the equality indexes reads need, and TTL indexes where the server
     * has them; resolves false when it lacks them (call sweepExpired instead).
     */
    async ensureIndexes(): Promise<boolean> {
      await deliveries.collection.createIndex({ u: 1 });
      await devices.acks.createIndex({ d: 1 });
      await devices.attempts.createIndex({ d: 1 });
      for (const col of EXPIRING) {
        try {
          await col.createIndex({ e: 1 }, { expireAfterSeconds: 0 });
        } catch (err) {
          if ((err as { code?: number }).code !== 238) throw err; // NotImplemented (FerretDB 1.x)
          return false;
        }
      }
      return true;
    },

    /** Deletes expired deliveries, acks and attempts (a scan each: for servers without TTL indexes, now and then). */
    async sweepExpired(now = new Date()): Promise<number> {
      let removed = 0;
      for (const col of EXPIRING) removed += (await col.deleteMany({ e: { $lt: now } })).deletedCount;
      return removed;
    },

    /** Stores a batch's deliveries (dispatcher: a whole slice before it is routed). Replayed ones are ignored. */
    appendDeliveries: (batch: Delivery[]) => deliveries.append(batch),

    /**
     * For each request, the device's undelivered (not acked), unexpired,
     * unparked messages after `afterId`, in id order, at most `limit`. Reads
     * per batch: one find per distinct user and one per app for its
     * broadcasts, two per device that has anything (acks, attempts), and one
     * per distinct message body.
     */
    async pendingFor(requests: PendingRequest[], opts: PendingOptions): Promise<PendingMessage[][]> {
      const now = opts.now ?? Date.now();
      const own = requests.map((r) => userKey(r.app, r.user));
      const all = requests.map((r) => userKey(r.app, BROADCAST_INBOX));
      const lists = await deliveries.read([...own, ...all], now);
      const live: DeliveryItem[][] = requests.map((r, i) => {
        const items = [...(lists.get(own[i]!) ?? []), ...(lists.get(all[i]!) ?? [])];
        // Both lists are compacted; merged, a collapse key shared by both keeps only its newest.
        return compactItems(items, now).filter((item) => item.m > r.afterId);
      });
      const withItems = requests.flatMap((_, i) => (live[i]!.length > 0 ? [i] : []));
      const states = await devices.stateOf(withItems.map((i) => requests[i]!));
      const due = new Map<number, (DeliveryItem & { n: number })[]>();
      withItems.forEach((i, j) => {
        const { acked, attempts } = states[j]!;
        const items = live[i]!.flatMap((item) => {
          const n = attempts.get(item.m) ?? 0;
          return !acked.has(item.m) && n < opts.maxAttempts ? [{ ...item, n }] : [];
        });
        if (items.length > 0) due.set(i, items);
      });
      const taskIds = new Set([...due.values()].flatMap((items) => items.flatMap((item) => (item.t ? [item.t] : []))));
      const stopped = taskIds.size > 0 && opts.stoppedTasks ? await opts.stoppedTasks([...taskIds]) : new Set<string>();
      for (const [i, items] of due) due.set(i, items.filter((item) => !item.t || !stopped.has(item.t)).slice(0, requests[i]!.limit));
      const bodies = await readMessages([...due.values()].flatMap((items) => items.map((item) => item.m)));
      return requests.map((_, i) =>
        (due.get(i) ?? []).flatMap((item) => {
          const message = bodies.get(item.m);
          return message && message.expiresAt.getTime() > now ? [{ message, attempts: item.n }] : [];
        }),
      );
    },

    /** Stores delivery attempts on connect (one insertMany); returns the entries that reached `maxAttempts` (now parked). */
    async recordAttempts(batch: AttemptEntry[], maxAttempts: number): Promise<AttemptEntry[]> {
      await devices.recordAttempts(batch);
      return batch.filter((a) => a.attempt >= maxAttempts);
    },

    /** Stores the acks of many devices (one insertMany per 1,000 ids); duplicates are ignored. */
    ack: (batch: AckBatchEntry[]) => devices.ack(batch),

    /** What a device has acknowledged and how often each message was tried on connect (operators, tests, replays). */
    async deviceState(app: string, user: string, device: string): Promise<{ acked: string[]; tries: Record<string, number> }> {
      const [s] = await devices.stateOf([{ app, user, device }]);
      return { acked: [...s!.acked].sort(), tries: Object.fromEntries(s!.attempts) };
    },

    /** Ids of every stored delivery of a user, stale ones included (operators, tests). */
    deliveryIds: (app: string, user: string) => deliveries.ids(app, user),

    /** Deletes a user's deliveries (an operator forgetting a user; tests simulating lost state). Returns how many. */
    forgetDeliveries: (app: string, user: string) => deliveries.forget(app, user),

    /** One message's durable state for a trace: which users hold it, which devices acked it, its attempts per device. */
    async traceState(app: string, msgId: string, users: string[], devs: { user: string; device: string }[]) {
      const [held, states] = await Promise.all([
        Promise.all(users.map((u) => limit(() => deliveries.has(app, u, msgId)))),
        devices.stateOf(devs.map((d) => ({ app, ...d }))),
      ]);
      return {
        inDeliveries: held,
        devices: states.map((s) => ({ acked: s.acked.has(msgId), tries: s.attempts.get(msgId) ?? 0 })),
      };
    },
  };
}

export type DeliveryStore = ReturnType<typeof createDeliveryStore>;
