import type { Collection, Db } from 'mongodb';
import { bucketName, byBucket, duplicateIndexes } from './mongo.js';

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

/** How long a key is remembered by default (IDEMPOTENCY_WINDOW_SECONDS in the collector). */
export const DEFAULT_WINDOW_MS = 24 * 3600 * 1000;
/** A claim not completed within this long is considered abandoned. */
const STALE_MS = 10_000;
/** Bulk inserts sent at once by claimMany (one per collection part). */
const CLAIM_CONCURRENCY = 4;

export interface IdempotencyKeys {
  /**
   * Claims a key for `msgId`. A key whose first submission never finished
   * (crash, store failure) is taken over after a short grace period, so it
   * cannot stay stuck pointing at a message that was never accepted.
   */
  claim(app: string, key: string, msgId: string): Promise<IdempotencyClaim>;
  /**
   * Claims many keys at once: one insert per collection part for all of them
   * (keys must be distinct); only keys already present cost more round trips.
   * Results are in the order of `claims`.
   */
  claimMany(claims: { app: string; key: string; msgId: string }[]): Promise<IdempotencyClaim[]>;
  /**
   * Marks a claim done; `msgId` replaces the id it was claimed for (a caller that learns the id later).
   * `keepUntil` (the message's expiry) keeps the key past the window for as long as the message
   * lives: a push.events record read again by a replay must find the message it became (same id,
   * nothing delivered twice), however long after the window that is.
   */
  complete(app: string, key: string, msgId?: string, keepUntil?: Date): Promise<void>;
  release(app: string, key: string): Promise<void>;
}

/**
 * Idempotency keys in the `idempotency_XX` collections (split by a hash of
 * `_id`, see bucketName), one document per (app, key); every operation is by `_id`.
 */
export function createIdempotencyKeys(db: Db, { windowMs = DEFAULT_WINDOW_MS }: { windowMs?: number } = {}): IdempotencyKeys {
  const idem = (id: string): Collection<IdempotencyRecord> => db.collection<IdempotencyRecord>(bucketName('idempotency', id));
  const record = (_id: string, msgId: string, now: Date): IdempotencyRecord => ({ _id, msg: msgId, done: false, at: now, exp: new Date(now.getTime() + windowMs) });

  /** The key exists already: a duplicate, still in progress, or abandoned (or expired) and taken over. */
  const resolveExisting = async (app: string, key: string, msgId: string, now: Date): Promise<IdempotencyClaim> => {
    const _id = `${app}|${key}`;
    const existing = await idem(_id).findOne({ _id });
    if (!existing) return keys.claim(app, key, msgId);
    // Past its expiry but not yet swept (FerretDB has no TTL index; the sweep runs every minute):
    // forgotten, as documented, so the window is what the configuration says.
    if (existing.exp.getTime() <= now.getTime()) {
      const renewed = await idem(_id).updateOne({ _id, msg: existing.msg, exp: existing.exp }, { $set: { msg: msgId, done: false, at: now, exp: new Date(now.getTime() + windowMs) } });
      return renewed.modifiedCount === 1 ? { state: 'claimed' } : resolveExisting(app, key, msgId, now);
    }
    if (existing.done) return { state: 'duplicate', id: existing.msg };
    if (now.getTime() - existing.at.getTime() < STALE_MS) return { state: 'in-progress', id: existing.msg };
    const taken = await idem(_id).updateOne({ _id, msg: existing.msg, done: false }, { $set: { msg: msgId, at: now } });
    return taken.modifiedCount === 1 ? { state: 'claimed' } : { state: 'in-progress', id: existing.msg };
  };

  const keys: IdempotencyKeys = {
    async claim(app, key, msgId) {
      const _id = `${app}|${key}`;
      const now = new Date();
      try {
        await idem(_id).insertOne(record(_id, msgId, now));
        return { state: 'claimed' };
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
      }
      return resolveExisting(app, key, msgId, now);
    },
    async claimMany(claims) {
      const now = new Date();
      const out: IdempotencyClaim[] = claims.map(() => ({ state: 'claimed' }));
      const indexed = claims.map((c, i) => ({ ...c, i, _id: `${c.app}|${c.key}` }));
      const taken: typeof indexed = [];
      const groups = [...byBucket('idempotency', indexed, (c) => c._id)];
      // Inserts into different collection parts, a few at once.
      const worker = async () => {
        for (let g = groups.shift(); g; g = groups.shift()) {
          const [name, group] = g;
          try {
            await db.collection<IdempotencyRecord>(name).insertMany(
              group.map((c) => record(c._id, c.msgId, now)),
              { ordered: false },
            );
          } catch (err) {
            for (const i of duplicateIndexes(err, group.length)) taken.push(group[i]!);
          }
        }
      };
      await Promise.all(Array.from({ length: Math.min(CLAIM_CONCURRENCY, groups.length) }, worker));
      for (const c of taken) out[c.i] = await resolveExisting(c.app, c.key, c.msgId, now);
      return out;
    },
    async complete(app, key, msgId, keepUntil) {
      const _id = `${app}|${key}`;
      const exp = keepUntil && keepUntil.getTime() > Date.now() + windowMs ? { exp: keepUntil } : {};
      await idem(_id).updateOne({ _id }, { $set: { done: true, ...(msgId ? { msg: msgId } : {}), ...exp } });
    },
    async release(app, key) {
      const _id = `${app}|${key}`;
      await idem(_id).deleteOne({ _id });
    },
  };
  return keys;
}
