import type { Collection, Db } from 'mongodb';
import type { StoredMessage } from './messages.js';
import { BROADCAST_INBOX } from '../protocol/tokens.js';
import { ensureExpiryIndex } from '../platform/mongo.js';
import {
  compactItems,
  createDeliveries,
  type AckBatchEntry,
  type AttemptEntry,
  type Deliveries,
  type Delivery,
  type DeliveryItem,
  type UserState,
} from './deliveries.js';
import { deliveryId, userKey } from './keys.js';
import { createLimiter } from '../platform/concurrency.js';
import { createHotIndex, type HotIndex, type HotIndexOptions } from './hotIndex.js';
import type { Redis } from 'ioredis';

/**
 * The durable delivery state of persistent messages (store/deliveries.ts):
 * which users have which messages, what each device acknowledged and how
 * often each message was delivered to it on connect. Every write is an
 * insert, every read an equality find on the indexed user key or a lookup
 * by `_id` (what FerretDB pushes down to PostgreSQL; MongoDB is fast either
 * way), and every function takes a batch. Nothing outside store/ touches the
 * collection. With `redis`, resumes read a hot index of each user's records in Redis first
 * (store/hotIndex.ts), which every write and delete here keeps or drops; MongoDB stays the
 * source of truth, and everything is recoverable from it alone. Every process that writes
 * deliveries, acks or attempts of users the pushers read must be given the same Redis.
 */

export interface DeviceRef {
  app: string;
  user: string;
  device: string;
}

export interface PendingRequest extends DeviceRef {
  /** Only messages with a greater id (the previous page's last). */
  afterId: string;
  /** Messages at most. */
  limit: number;
}

/** A stored message due to a device: what its frame needs. */
export interface PendingMessage {
  id: string;
  payload: string;
  /** ms since epoch */
  createdAt: number;
  /** ms since epoch */
  expiresAt: number;
  collapseKey?: string;
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

/** Store calls in flight at once from this process (the driver's pool is 20 connections). */
const STORE_CONCURRENCY = 16;
/** Calls waiting for the limiter before further ones fail instead of queueing. */
const MAX_WAITING = 100_000;

export interface DeliveryStoreOptions {
  /** The hot index's Redis (with the app's key prefix); without it every read goes to MongoDB. */
  redis?: Redis;
  hot?: HotIndexOptions;
}

const noReceipts = () => ({ acked: new Set<string>(), attempts: new Map<string, number>() });

type DueItem = DeliveryItem & { n: number };

/**
 * Per request, the device's due items: the user's and the app's broadcast deliveries merged
 * (a collapse key in both keeps only its newest), after `afterId`, not acked, not parked.
 */
function dueItems(requests: PendingRequest[], state: Map<string, UserState>, now: number, maxAttempts: number): DueItem[][] {
  return requests.map((r) => {
    const mine = state.get(userKey(r.app, r.user))!;
    const { acked, attempts } = mine.receipts.get(r.device) ?? noReceipts();
    return compactItems([...mine.items, ...state.get(userKey(r.app, BROADCAST_INBOX))!.items], now).flatMap((item) => {
      const n = attempts.get(item.m) ?? 0;
      return item.m > r.afterId && !acked.has(item.m) && n < maxAttempts ? [{ ...item, n }] : [];
    });
  });
}

/** A due item as sent: its inline payload, or its message's body (none when the message is gone or expired). */
function pendingOf(item: DueItem, bodies: Map<string, StoredMessage>, now: number): PendingMessage[] {
  if (item.p !== undefined && item.c !== undefined) {
    return [{ id: item.m, payload: item.p, createdAt: item.c, expiresAt: item.e, ...(item.k ? { collapseKey: item.k } : {}), attempts: item.n }];
  }
  const m = bodies.get(item.m);
  if (!m || m.expiresAt.getTime() <= now) return [];
  return [
    {
      id: m._id,
      payload: m.payload,
      createdAt: m.createdAt.getTime(),
      expiresAt: m.expiresAt.getTime(),
      ...(m.collapseKey ? { collapseKey: m.collapseKey } : {}),
      attempts: item.n,
    },
  ];
}

export class DeliveryStore {
  private readonly limit = createLimiter(STORE_CONCURRENCY, MAX_WAITING);
  private readonly hot?: HotIndex;
  private readonly deliveries: Deliveries;
  private readonly messages: Collection<StoredMessage>;

  constructor(db: Db, opts: DeliveryStoreOptions = {}) {
    this.hot = opts.redis ? createHotIndex(opts.redis, opts.hot) : undefined;
    this.deliveries = createDeliveries(db, this.limit, this.hot);
    this.messages = db.collection<StoredMessage>('messages');
  }

  /**
   * Creates the index on the user key, and a TTL index where the server has
   * them; resolves false when it lacks them (call sweepExpired instead).
   */
  async ensureIndexes(): Promise<boolean> {
    await this.deliveries.collection.createIndex({ u: 1 });
    return ensureExpiryIndex(this.deliveries.collection, 'e');
  }

  /** Deletes expired deliveries, acks and attempts (a scan: for servers without TTL indexes, now and then). */
  async sweepExpired(now = new Date()): Promise<number> {
    // The users whose records go: their hot indexes are dropped after the delete.
    const users = new Set<string>();
    const col = this.deliveries.collection;
    if (this.hot) for await (const d of col.find({ e: { $lt: now } }, { projection: { u: 1 } })) users.add(d.u);
    try {
      return (await col.deleteMany({ e: { $lt: now } })).deletedCount;
    } finally {
      await this.hot?.drop(users);
    }
  }

  /** Users' reads served by the hot index so far (tests, metrics). */
  hotHits(): number {
    return this.deliveries.hotHits();
  }

  /** Users' reads that went to MongoDB (one find each) so far (metrics). */
  mongoReads(): number {
    return this.deliveries.mongoReads();
  }

  /** Stops the hot index's background retries. */
  close(): void {
    this.hot?.close();
  }

  /** Stores a batch's deliveries (dispatcher: a whole slice before it is routed). Replayed ones are ignored. */
  appendDeliveries(batch: Delivery[]): Promise<void> {
    return this.deliveries.append(batch);
  }

  /**
   * For each request, the device's undelivered (not acked), unexpired,
   * unparked messages after `afterId`, in id order, at most `limit`. Reads
   * per batch: one find per distinct user (its deliveries, small payloads
   * included, and its devices' receipts), one per app for its broadcasts,
   * and one per distinct message whose payload was too large to keep inline.
   */
  async pendingFor(requests: PendingRequest[], opts: PendingOptions): Promise<PendingMessage[][]> {
    const now = opts.now ?? Date.now();
    const keys = requests.flatMap((r) => [userKey(r.app, r.user), userKey(r.app, BROADCAST_INBOX)]);
    const due = dueItems(requests, await this.deliveries.read(keys, now), now, opts.maxAttempts);
    const taskIds = new Set(due.flatMap((items) => items.flatMap((item) => (item.t ? [item.t] : []))));
    const stopped = taskIds.size > 0 && opts.stoppedTasks ? await opts.stoppedTasks([...taskIds]) : new Set<string>();
    const page = due.map((items, i) => items.filter((item) => !item.t || !stopped.has(item.t)).slice(0, requests[i]!.limit));
    const bodies = await this.readMessages(page.flatMap((items) => items.flatMap((item) => (item.p === undefined ? [item.m] : []))));
    return page.map((items) => items.flatMap((item) => pendingOf(item, bodies, now)));
  }

  /** Stores delivery attempts on connect (one insertMany); returns the entries that reached `maxAttempts` (now parked). */
  async recordAttempts(batch: AttemptEntry[], maxAttempts: number): Promise<AttemptEntry[]> {
    await this.deliveries.recordAttempts(batch);
    return batch.filter((a) => a.attempt >= maxAttempts);
  }

  /** Stores the acks of many devices (one insertMany per 1,000 ids); duplicates are ignored. */
  ack(batch: AckBatchEntry[]): Promise<void> {
    return this.deliveries.ack(batch);
  }

  /** What a device has acknowledged and how often each message was tried on connect (operators, tests, replays). */
  async deviceState(app: string, user: string, device: string): Promise<{ acked: string[]; tries: Record<string, number> }> {
    const s = await this.stateOf({ app, user, device });
    return { acked: [...s.acked].sort(), tries: Object.fromEntries(s.attempts) };
  }

  /** Ids of every stored delivery of a user, stale ones included (operators, tests). */
  deliveryIds(app: string, user: string): Promise<string[]> {
    return this.deliveries.ids(app, user);
  }

  /** Deletes a user's deliveries, keeping acks and attempts (tests simulating lost delivery state). Returns how many. */
  forgetDeliveries(app: string, user: string): Promise<number> {
    return this.deliveries.forget(app, user);
  }

  /** One message's durable state for a trace: which users hold it, which devices acked it, its attempts per device. */
  async traceState(app: string, msgId: string, users: string[], devices: { user: string; device: string }[]) {
    const col = this.deliveries.collection;
    const exists = async (_id: string) => (await this.limit(() => col.findOne({ _id }, { projection: { _id: 1 } }))) !== null;
    const [held, states] = await Promise.all([
      Promise.all(users.map((u) => exists(deliveryId(app, u, msgId)))),
      Promise.all(devices.map((d) => this.stateOf({ app, ...d }))),
    ]);
    return {
      inDeliveries: held,
      devices: states.map((s) => ({ acked: s.acked.has(msgId), tries: s.attempts.get(msgId) ?? 0 })),
    };
  }

  private async stateOf({ app, user, device }: DeviceRef) {
    const own = (await this.deliveries.read([userKey(app, user)])).get(userKey(app, user))!;
    return own.receipts.get(device) ?? noReceipts();
  }

  /** Message bodies by id, each read once per call whatever number of devices wants it. */
  private async readMessages(ids: Iterable<string>): Promise<Map<string, StoredMessage>> {
    const out = new Map<string, StoredMessage>();
    const read = async (_id: string) => {
      const m = await this.messages.findOne({ _id });
      if (m) out.set(_id, m);
    };
    await Promise.all([...new Set(ids)].map((_id) => this.limit(() => read(_id))));
    return out;
  }
}

export function createDeliveryStore(db: Db, opts: DeliveryStoreOptions = {}): DeliveryStore {
  return new DeliveryStore(db, opts);
}
