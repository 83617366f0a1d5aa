import type { Collection, Db } from 'mongodb';
import { duplicateIndexes } from '../common/src/mongo.js';

interface IdempotencyRecord {
  _id: string;
  /** The id of the message the key stands for (the claimer's id until it completes). */
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
/**
 * A claim not completed within this long is considered abandoned and may be
 * taken over. Longer than a submission can take (the collector bounds each
 * one by SUBMIT_DEADLINE_MS), so a claim is never taken from a submission that
 * is still running: that would store the message twice under two ids.
 */
export const STALE_MS = 30_000;

export interface IdempotencyKeys {
  /**
   * Claims a key for `msgId`. A key whose first submission never finished
   * (crash, store failure) is taken over after STALE_MS, so it cannot stay
   * stuck pointing at a message that was never accepted.
   */
  claim(app: string, key: string, msgId: string): Promise<IdempotencyClaim>;
  /**
   * Claims many keys with one insert (keys must be distinct); only keys already
   * present cost more round trips. Results are in the order of `claims`.
   */
  claimMany(claims: { app: string; key: string; msgId: string }[]): Promise<IdempotencyClaim[]>;
  /**
   * Marks the claim made for `claimedId` done, once its message is durable.
   * A claim taken over meanwhile (its holder was too slow) is left alone:
   * marking it done would answer later retries with a message that the new
   * holder may still fail to store. `msgId` replaces the id (a caller that
   * learns it later); `keepUntil` (the message's expiry) keeps the key past the
   * window for as long as the message lives, so a push.events record read again
   * by a replay finds the message it became. Resolves false when the claim was
   * no longer this caller's.
   */
  complete(app: string, key: string, claimedId: string, opts?: { msgId?: string; keepUntil?: Date }): Promise<boolean>;
  /** Gives back the claim made for `claimedId` (nothing was accepted); a claim taken over since is left alone. */
  release(app: string, key: string, claimedId: string): Promise<void>;
  /**
   * Notes that this process gave up on the claim for `claimedId` without
   * knowing whether its message was stored (the store failed mid-write): a
   * retry then resolves the claim at once (the message found: a duplicate;
   * not found: taken over) instead of waiting STALE_MS.
   */
  gaveUp(claimedId: string): void;
  /** Creates the expiry index; resolves false when the server lacks TTL indexes (call sweepExpired instead). */
  ensureIndexes(): Promise<boolean>;
  /** Deletes expired keys; for servers without TTL indexes. Returns how many. */
  sweepExpired(): Promise<number>;
}

/**
 * Idempotency keys in one `idempotency` collection, one document per
 * (app, key); every operation is by `_id` (plus the claimer's id), so each is
 * an indexed equality lookup on FerretDB/PostgreSQL as on MongoDB.
 */
export function createIdempotencyKeys(
  db: Db,
  {
    windowMs = DEFAULT_WINDOW_MS,
    collection = 'idempotency',
    isStored,
  }: {
    windowMs?: number;
    collection?: string;
    /**
     * Whether a message is durably stored (persistent messages only). A claim left in
     * progress (its holder crashed, or could not complete it) whose message is stored
     * is completed for it rather than taken over: taking it over would store the same
     * submission a second time, under another id.
     */
    isStored?: (msgId: string) => Promise<boolean>;
  } = {},
): IdempotencyKeys {
  const idem: Collection<IdempotencyRecord> = db.collection<IdempotencyRecord>(collection);
  /** Claims this process gave up on (bounded: oldest forgotten first). */
  const givenUp = new Set<string>();
  const record = (_id: string, msgId: string, now: Date): IdempotencyRecord => ({ _id, msg: msgId, done: false, at: now, exp: new Date(now.getTime() + windowMs) });

  /** The key exists already: a duplicate, still in progress, or abandoned (or expired) and taken over. */
  const resolveExisting = async (app: string, key: string, msgId: string, now: Date, depth = 0): Promise<IdempotencyClaim> => {
    const _id = `${app}|${key}`;
    const existing = await idem.findOne({ _id });
    if (!existing) {
      if (depth > 3) throw new Error(`idempotency key ${_id} keeps changing under its claim`);
      try {
        await idem.insertOne(record(_id, msgId, now));
        return { state: 'claimed' };
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        return resolveExisting(app, key, msgId, now, depth + 1);
      }
    }
    // Past its expiry but not yet swept (no TTL index on FerretDB): forgotten, as documented.
    if (existing.exp.getTime() <= now.getTime()) {
      const renewed = await idem.updateOne({ _id, msg: existing.msg, exp: existing.exp }, { $set: { msg: msgId, done: false, at: now, exp: new Date(now.getTime() + windowMs) } });
      if (renewed.modifiedCount === 1) return { state: 'claimed' };
      if (depth > 3) throw new Error(`idempotency key ${_id} keeps changing under its claim`);
      return resolveExisting(app, key, msgId, now, depth + 1);
    }
    if (existing.done) return { state: 'duplicate', id: existing.msg };
    if (now.getTime() - existing.at.getTime() < STALE_MS && !givenUp.has(existing.msg)) return { state: 'in-progress', id: existing.msg };
    if (isStored && (await isStored(existing.msg))) {
      givenUp.delete(existing.msg);
      await idem.updateOne({ _id, msg: existing.msg, done: false }, { $set: { done: true } });
      return { state: 'duplicate', id: existing.msg };
    }
    givenUp.delete(existing.msg);
    const taken = await idem.updateOne({ _id, msg: existing.msg, done: false }, { $set: { msg: msgId, at: now } });
    return taken.modifiedCount === 1 ? { state: 'claimed' } : { state: 'in-progress', id: existing.msg };
  };

  return {
    async claim(app, key, msgId) {
      return (await this.claimMany([{ app, key, msgId }]))[0]!;
    },
    async claimMany(claims) {
      if (claims.length === 0) return [];
      const now = new Date();
      const out: IdempotencyClaim[] = claims.map(() => ({ state: 'claimed' }));
      const docs = claims.map((c) => record(`${c.app}|${c.key}`, c.msgId, now));
      const taken: number[] = [];
      if (docs.length === 1) {
        try {
          await idem.insertOne(docs[0]!);
        } catch (err) {
          if ((err as { code?: number }).code !== 11000) throw err;
          taken.push(0);
        }
      } else {
        try {
          await idem.insertMany(docs, { ordered: false });
        } catch (err) {
          taken.push(...duplicateIndexes(err, docs.length));
        }
      }
      for (const i of taken) out[i] = await resolveExisting(claims[i]!.app, claims[i]!.key, claims[i]!.msgId, now);
      return out;
    },
    async complete(app, key, claimedId, { msgId, keepUntil } = {}) {
      const _id = `${app}|${key}`;
      const exp = keepUntil && keepUntil.getTime() > Date.now() + windowMs ? { exp: keepUntil } : {};
      const res = await idem.updateOne({ _id, msg: claimedId }, { $set: { done: true, ...(msgId ? { msg: msgId } : {}), ...exp } });
      return res.matchedCount === 1;
    },
    async release(app, key, claimedId) {
      await idem.deleteOne({ _id: `${app}|${key}`, msg: claimedId, done: false });
    },
    gaveUp(claimedId) {
      if (givenUp.size >= 10_000) givenUp.delete(givenUp.values().next().value!);
      givenUp.add(claimedId);
    },
    async ensureIndexes() {
      try {
        await idem.createIndex({ exp: 1 }, { expireAfterSeconds: 0 });
        return true;
      } catch (err) {
        if ((err as { code?: number }).code !== 238) throw err; // NotImplemented (FerretDB)
        return false;
      }
    },
    async sweepExpired() {
      return (await idem.deleteMany({ exp: { $lt: new Date() } })).deletedCount;
    },
  };
}
