import type { Collection, Db, Filter } from 'mongodb';
import { newId } from '../protocol/ids.js';
import { ensureExpiryIndex } from '../platform/mongo.js';
import { createWriteBatcher, type WriteBatcher, type WriteBatcherOptions } from './writeBatcher.js';
import { mapBounded } from '../platform/concurrency.js';

/**
 * Persistent messages and their outbox.
 *
 *   messages  one document per message (the payload is stored once)
 *   outbox    one document per stored batch: the ids of its messages, deleted
 *             once every one of them is on Kafka (or taken back)
 *
 * A batch of messages costs two writes (one insertMany, one outbox insert)
 * however many requests it gathers; marking it published costs one delete.
 * Every read and delete is by `_id` (an indexed equality on
 * FerretDB/PostgreSQL as on MongoDB); only the outbox sweep reads by range,
 * on a collection that holds nothing but unpublished batches.
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

export interface OutboxBatch {
  _id: string;
  ids: string[];
  at: Date;
}

export interface MessagesStore {
  /**
   * Stores messages and one outbox entry for all of them. All or nothing for
   * the caller: when it rejects, none of them may be reported accepted (some
   * may be in the store; they are never published and expire).
   */
  storeMessages(batch: StoredMessage[]): Promise<void>;
  /** Marks messages published (or taken back); an outbox batch is deleted once all its messages are. */
  markPublished(ids: string[]): Promise<void>;
  /** Takes back messages stored moments ago whose submission then failed. */
  unstore(ids: string[]): Promise<void>;
  /** Outbox batches stored before `before`, oldest first, with their messages (those still stored). */
  unpublished(before: Date, limit: number): Promise<{ batch: OutboxBatch; messages: StoredMessage[] }[]>;
  /**
   * Moves up to `limit` entries of the outbox of earlier versions (one document per
   * message id, collection `outbox`) into one outbox batch, so messages stored
   * before an upgrade and never published still go out. Returns how many it moved.
   */
  adoptLegacyOutbox(limit: number): Promise<number>;
  /** Whether a message is stored (its outbox entry was written before it). */
  isStored(id: string): Promise<boolean>;
  /** Deletes an outbox batch whose messages the sweeper published. */
  batchDone(batchId: string): Promise<void>;
  /** Creates the expiry index; false when the server lacks TTL indexes (call sweepExpired instead). */
  ensureIndexes(): Promise<boolean>;
  /** Deletes expired messages; for servers without TTL indexes. Returns how many. */
  sweepExpired(): Promise<number>;
  /** Store operations sent so far, by kind (for the figures in docs/performance.md and tests). */
  ops(): Record<string, number>;
}

/** Reads of messages by id the sweep sends at once. */
const READ_CONCURRENCY = 16;
/** Batches whose publication is being counted in memory at most; past it the sweeper takes the rest. */
const MAX_TRACKED_BATCHES = 100_000;

class MongoMessagesStore implements MessagesStore {
  private readonly messages: Collection<StoredMessage>;
  private readonly outbox: Collection<OutboxBatch>;
  private readonly legacyOutbox: Collection<{ _id: string; at: Date }>;
  private readonly counts: Record<string, number> = {};
  /** Per stored batch: ids not yet published. */
  private readonly open = new Map<string, Set<string>>();
  /** Message id to its batch, while the batch is open. */
  private readonly batchOf = new Map<string, string>();

  constructor(db: Db, names: { messagesCollection: string; outboxCollection: string; legacyOutboxCollection: string }) {
    this.messages = db.collection<StoredMessage>(names.messagesCollection);
    this.outbox = db.collection<OutboxBatch>(names.outboxCollection);
    this.legacyOutbox = db.collection<{ _id: string; at: Date }>(names.legacyOutboxCollection);
  }

  async storeMessages(batch: StoredMessage[]): Promise<void> {
    if (batch.length === 0) return;
    // The outbox entry first: a message found in the store is then always on its way to
    // Kafka (isStored may answer for a write that failed on the wire), and an entry whose
    // messages never arrived is dropped by the sweep once they are overdue.
    const entry: OutboxBatch = { _id: newId(), ids: batch.map((m) => m._id), at: new Date() };
    this.count('outbox.insert');
    await this.outbox.insertOne(entry);
    this.count('messages.insertMany');
    await this.messages.insertMany(batch, { ordered: false });
    if (this.open.size < MAX_TRACKED_BATCHES) {
      this.open.set(entry._id, new Set(entry.ids));
      for (const id of entry.ids) this.batchOf.set(id, entry._id);
    }
  }

  /** Deletes the outbox batches whose every message is now published. */
  async markPublished(ids: string[]): Promise<void> {
    const done: string[] = [];
    for (const id of ids) {
      const b = this.batchOf.get(id);
      if (b === undefined) continue;
      this.batchOf.delete(id);
      const left = this.open.get(b);
      if (!left) continue;
      left.delete(id);
      if (left.size === 0) {
        this.open.delete(b);
        done.push(b);
      }
    }
    if (done.length === 0) return;
    this.count('outbox.delete');
    await deleteByIds(this.outbox, done);
  }

  async unstore(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    this.count('messages.delete');
    await deleteByIds(this.messages, ids);
    await this.markPublished(ids);
  }

  async unpublished(before: Date, limit: number): Promise<{ batch: OutboxBatch; messages: StoredMessage[] }[]> {
    this.count('outbox.find');
    // Small collection (unpublished batches only): no pushdown needed for the range and sort.
    const batches = await this.outbox
      .find({ at: { $lt: before } })
      .sort({ _id: 1 })
      .limit(limit)
      .toArray();
    const out: { batch: OutboxBatch; messages: StoredMessage[] }[] = [];
    for (const batch of batches) out.push({ batch, messages: await this.readMessages(batch.ids) });
    return out;
  }

  async adoptLegacyOutbox(limit: number): Promise<number> {
    const legacy = await this.legacyOutbox.find({}).sort({ _id: 1 }).limit(limit).toArray();
    if (legacy.length === 0) return 0;
    const at = new Date(Math.min(...legacy.map((e) => e.at.getTime())));
    this.count('outbox.insert');
    await this.outbox.insertOne({ _id: newId(), ids: legacy.map((e) => e._id), at });
    await deleteByIds(
      this.legacyOutbox,
      legacy.map((e) => e._id),
    );
    return legacy.length;
  }

  async isStored(id: string): Promise<boolean> {
    this.count('messages.findOne');
    return (await this.messages.findOne({ _id: id }, { projection: { _id: 1 } })) !== null;
  }

  async batchDone(batchId: string): Promise<void> {
    const left = this.open.get(batchId);
    if (left) {
      this.open.delete(batchId);
      for (const id of left) this.batchOf.delete(id);
    }
    this.count('outbox.delete');
    await this.outbox.deleteOne({ _id: batchId });
  }

  ensureIndexes(): Promise<boolean> {
    return ensureExpiryIndex(this.messages, 'expiresAt');
  }

  async sweepExpired(): Promise<number> {
    return (await this.messages.deleteMany({ expiresAt: { $lt: new Date() } })).deletedCount;
  }

  ops(): Record<string, number> {
    return { ...this.counts };
  }

  private count(op: string): void {
    this.counts[op] = (this.counts[op] ?? 0) + 1;
  }

  private async readMessages(ids: string[]): Promise<StoredMessage[]> {
    const found = await mapBounded(ids, READ_CONCURRENCY, (id) => {
      this.count('messages.findOne');
      return this.messages.findOne({ _id: id });
    });
    return found.filter((m): m is StoredMessage => m !== null);
  }
}

export function createMessagesStore(
  db: Db,
  { messagesCollection = 'messages', outboxCollection = 'outbox_batches', legacyOutboxCollection = 'outbox' } = {},
): MessagesStore {
  return new MongoMessagesStore(db, { messagesCollection, outboxCollection, legacyOutboxCollection });
}

/**
 * Deletes documents by id in bulk calls of DELETE_CHUNK: FerretDB 1.24 stalls on
 * a write batch of about 100 operations (95 took 250 ms, 100 never answered).
 */
const DELETE_CHUNK = 50;
async function deleteByIds<T extends { _id: string }>(coll: Collection<T>, ids: string[]): Promise<void> {
  for (let i = 0; i < ids.length; i += DELETE_CHUNK) {
    const part = ids.slice(i, i + DELETE_CHUNK);
    if (part.length === 1) await coll.deleteOne({ _id: part[0]! } as Filter<T>);
    else
      await coll.bulkWrite(
        part.map((_id) => ({ deleteOne: { filter: { _id } as Filter<T> } })),
        { ordered: false },
      );
  }
}

/** What a message weighs in a batch besides its payload (ids, users, dates, field names). */
const MESSAGE_OVERHEAD = 256;

/**
 * Stores the messages of concurrent submissions in one storeMessages call (one
 * insertMany and one outbox entry per batch instead of two writes per message).
 */
export function batchMessages(store: Pick<MessagesStore, 'storeMessages'>, opts: WriteBatcherOptions = {}): WriteBatcher<StoredMessage> {
  const weigh = (m: StoredMessage) => Buffer.byteLength(m.payload) + MESSAGE_OVERHEAD + (m.users?.length ?? 0) * 16;
  return createWriteBatcher((batch: StoredMessage[]) => store.storeMessages(batch), weigh, { what: 'the message store', ...opts });
}
