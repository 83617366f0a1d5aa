import { ackId, attemptId, deliveryId, userKey } from './keys.js';
import type { HotRecord } from './hotIndex.js';

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
export interface DeliveryDoc {
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
export const toRecord = (d: DeliveryDoc): HotRecord => ({
  m: d.m,
  e: d.e.getTime(),
  ...(d.k !== undefined ? { k: d.k } : {}),
  ...(d.t !== undefined ? { t: d.t } : {}),
  ...(d.p !== undefined ? { p: d.p } : {}),
  ...(d.c !== undefined ? { c: d.c.getTime() } : {}),
  ...(d.v !== undefined ? { v: d.v } : {}),
  ...(d.n !== undefined ? { n: d.n } : {}),
});

/** The document of one delivery; its payload is kept inline only when small. */
export const deliveryDoc = (d: Delivery): DeliveryDoc => ({
  _id: deliveryId(d.app, d.user, d.m),
  u: userKey(d.app, d.user),
  m: d.m,
  e: new Date(d.e),
  ...(d.k ? { k: d.k } : {}),
  ...(d.t ? { t: d.t } : {}),
  ...(d.p !== undefined && d.c !== undefined && d.p.length <= INLINE_PAYLOAD_CHARS ? { p: d.p, c: new Date(d.c) } : {}),
});

/** One ack document per acknowledged id of each entry. */
export function ackDocs(batch: AckBatchEntry[]): DeliveryDoc[] {
  const docs: DeliveryDoc[] = [];
  for (const { app, user, device, ids, expiresAt } of batch) {
    const u = userKey(app, user);
    ids.forEach((m, i) => docs.push({ _id: ackId(app, user, device, m), u, m, v: device, e: new Date(expiresAt[i]!) }));
  }
  return docs;
}

export const attemptDoc = (a: AttemptEntry): DeliveryDoc => ({
  _id: attemptId(a.app, a.user, a.device, a.id, a.conn),
  u: userKey(a.app, a.user),
  m: a.id,
  v: a.device,
  n: a.attempt,
  e: new Date(a.expiresAt),
});

/**
 * A user's records as read (from MongoDB or the hot index) turned into its state: live
 * deliveries compacted, receipts per device. `stale`: the ids of the records that went stale
 * (superseded, expired, over the cap, and their receipts), at most `maxStale`.
 */
export function userStateOf(records: { _id: string; r: HotRecord }[], now: number, maxStale: number): { state: UserState; stale: string[] } {
  const items: DeliveryItem[] = [];
  const receipts: Receipts = new Map();
  for (const { r: d } of records) {
    if (d.v === undefined) {
      items.push({ m: d.m, e: d.e, ...(d.k ? { k: d.k } : {}), ...(d.t ? { t: d.t } : {}), ...(d.p !== undefined && d.c ? { p: d.p, c: d.c } : {}) });
      continue;
    }
    let r = receipts.get(d.v);
    if (!r) receipts.set(d.v, (r = { acked: new Set(), attempts: new Map() }));
    if (d.n === undefined) r.acked.add(d.m);
    else r.attempts.set(d.m, (r.attempts.get(d.m) ?? 0) + 1);
  }
  const live = compactItems(items, now);
  const stale: string[] = [];
  if (live.length < items.length) {
    const kept = new Set(live.map((i) => i.m));
    // A receipt goes with its stale delivery; one of another user's message (a broadcast) stays.
    const gone = new Set(items.filter((i) => !kept.has(i.m)).map((i) => i.m));
    for (const d of records) if (gone.has(d.r.m) && stale.length < maxStale) stale.push(d._id);
  }
  return { state: { items: live, receipts }, stale };
}
