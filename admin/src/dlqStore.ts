import type { Db } from 'mongodb';
import { Binary } from 'mongodb';
import { duplicateIndexes, storable, storableText } from '../../platform/mongo.js';
import type { DeadLetter } from '../../schemas/types.js';

export type DlqState = 'new' | 'replayed' | 'purged';

/** A dead letter as the admin API shows it. */
export interface DlqEntry {
  /** "<dlqPartition>-<dlqOffset>" */
  id: string;
  partition: number;
  offset: string;
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: string;
  errorCode: string;
  reason: string;
  consumer: string;
  failedAt: string;
  key: string | null;
  headers: Record<string, string>;
  valueBase64: string | null;
  state: Exclude<DlqState, 'purged'>;
  replayedAt?: string;
}

interface DlqDoc {
  _id: string;
  partition: number;
  offset: string;
  /** The offset as a number, for ordering. */
  seq: number;
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: string;
  errorCode: string;
  reason: string;
  consumer: string;
  failedAt: Date;
  key: Binary | null;
  value: Binary | null;
  /**
   * The record's Kafka headers as UTF-8 JSON bytes: header names may hold '.', a leading '$'
   * or U+0000, and values U+0000, none of which a stored document may (FerretDB/PostgreSQL).
   * Entries indexed by earlier versions hold a plain object.
   */
  headers: Binary | Record<string, string>;
  state: DlqState;
  replayedAt?: Date;
}

export const DLQ_ID = /^\d{1,9}-\d{1,19}$/;

const headersOf = (h: DlqDoc['headers']): Record<string, string> =>
  h instanceof Binary ? (JSON.parse(Buffer.from(h.buffer).toString('utf8')) as Record<string, string>) : h;

const toEntry = (d: DlqDoc): DlqEntry => ({
  id: d._id,
  partition: d.partition,
  offset: d.offset,
  sourceTopic: d.sourceTopic,
  sourcePartition: d.sourcePartition,
  sourceOffset: d.sourceOffset,
  errorCode: d.errorCode,
  reason: d.reason,
  consumer: d.consumer,
  failedAt: d.failedAt.toISOString(),
  key: d.key ? Buffer.from(d.key.buffer).toString('utf8') : null,
  headers: headersOf(d.headers),
  valueBase64: d.value ? Buffer.from(d.value.buffer).toString('base64') : null,
  state: d.state === 'replayed' ? 'replayed' : 'new',
  ...(d.replayedAt ? { replayedAt: d.replayedAt.toISOString() } : {}),
});

/**
 * The index of push.dlq in the `deadLetters` collection: one document per
 * dead letter, keyed by its DLQ coordinates, so indexing the topic again
 * (a restart before a commit) changes nothing. Purged entries stay as
 * tombstones without their value, so re-reading the topic cannot bring them back.
 */
export function createDlqStore(db: Db) {
  const letters = db.collection<DlqDoc>('deadLetters');
  return {
    async add(entries: { partition: number; offset: string; letter: DeadLetter }[]): Promise<void> {
      if (entries.length === 0) return;
      const docs: DlqDoc[] = entries.map(({ partition, offset, letter: l }) => ({
        _id: `${partition}-${offset}`,
        partition,
        offset,
        seq: Number(offset),
        sourceTopic: l.sourceTopic,
        sourcePartition: l.partition,
        sourceOffset: l.offset,
        errorCode: storableText(l.errorCode),
        reason: storableText(l.reason),
        consumer: storableText(l.consumer),
        failedAt: new Date(Number(l.failedAt)),
        key: l.key ? new Binary(l.key) : null,
        value: l.value ? new Binary(l.value) : null,
        headers: new Binary(Buffer.from(JSON.stringify(l.headers), 'utf8')),
        state: 'new',
      }));
      try {
        await letters.insertMany(docs, { ordered: false });
      } catch (err) {
        duplicateIndexes(err, docs.length);
      }
    },
    /** Visible entries (not purged), newest first (DLQ partition, then offset, descending). */
    async list({ limit, sourceTopic }: { limit: number; sourceTopic?: string }): Promise<{ total: number; entries: DlqEntry[] }> {
      if (sourceTopic !== undefined && !storable(sourceTopic)) return { total: 0, entries: [] };
      const filter = { state: { $ne: 'purged' as const }, ...(sourceTopic ? { sourceTopic } : {}) };
      const [total, docs] = await Promise.all([letters.countDocuments(filter), letters.find(filter).sort({ partition: -1, seq: -1 }).limit(limit).toArray()]);
      return { total, entries: docs.map(toEntry) };
    },
    async get(id: string): Promise<DlqEntry | undefined> {
      const doc = DLQ_ID.test(id) ? await letters.findOne({ _id: id }) : null;
      return doc && doc.state !== 'purged' ? toEntry(doc) : undefined;
    },
    /** The raw record of a visible entry, for re-producing it. */
    async record(
      id: string,
    ): Promise<
      { topic: string; sourcePartition: number; sourceOffset: string; key: Buffer | null; value: Buffer | null; headers: Record<string, string> } | undefined
    > {
      const doc = DLQ_ID.test(id) ? await letters.findOne({ _id: id }) : null;
      if (!doc || doc.state === 'purged') return undefined;
      return {
        topic: doc.sourceTopic,
        sourcePartition: doc.sourcePartition,
        sourceOffset: doc.sourceOffset,
        key: doc.key ? Buffer.from(doc.key.buffer) : null,
        value: doc.value ? Buffer.from(doc.value.buffer) : null,
        headers: headersOf(doc.headers),
      };
    },
    /** Ids of visible entries in a state, oldest first, at most `limit`. */
    async ids(states: DlqState[], limit: number): Promise<string[]> {
      const docs = await letters
        .find({ state: { $in: states } }, { projection: { _id: 1 } })
        .sort({ partition: 1, seq: 1 })
        .limit(limit)
        .toArray();
      return docs.map((d) => d._id);
    },
    async markReplayed(id: string): Promise<void> {
      await letters.updateOne({ _id: id }, { $set: { state: 'replayed', replayedAt: new Date() } });
    },
    /** Returns whether a visible entry was purged. */
    async purge(id: string): Promise<boolean> {
      if (!DLQ_ID.test(id)) return false;
      const doc = await letters.findOne({ _id: id });
      if (!doc || doc.state === 'purged') return false;
      await letters.updateOne({ _id: id }, { $set: { state: 'purged', value: null, key: null, headers: {} } });
      return true;
    },
  };
}

export type DlqStore = ReturnType<typeof createDlqStore>;
