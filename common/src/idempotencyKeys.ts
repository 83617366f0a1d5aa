import type { Db } from 'mongodb';

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

/** How long a key is remembered. */
const WINDOW_MS = 24 * 3600 * 1000;
/** A claim not completed within this long is considered abandoned. */
const STALE_MS = 10_000;

export interface IdempotencyKeys {
  /**
   * Claims a key for `msgId`. A key whose first submission never finished
   * (crash, store failure) is taken over after a short grace period, so it
   * cannot stay stuck pointing at a message that was never accepted.
   */
  claim(app: string, key: string, msgId: string): Promise<IdempotencyClaim>;
  complete(app: string, key: string): Promise<void>;
  release(app: string, key: string): Promise<void>;
}

/** Idempotency keys in the `idempotency` collection, one document per (app, key); every operation is by `_id`. */
export function createIdempotencyKeys(db: Db): IdempotencyKeys {
  const idem = db.collection<IdempotencyRecord>('idempotency');
  const keys: IdempotencyKeys = {
    async claim(app, key, msgId) {
      const _id = `${app}|${key}`;
      const now = new Date();
      try {
        await idem.insertOne({ _id, msg: msgId, done: false, at: now, exp: new Date(now.getTime() + WINDOW_MS) });
        return { state: 'claimed' };
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
      }
      const existing = await idem.findOne({ _id });
      if (!existing) return keys.claim(app, key, msgId);
      if (existing.done) return { state: 'duplicate', id: existing.msg };
      if (now.getTime() - existing.at.getTime() < STALE_MS) return { state: 'in-progress', id: existing.msg };
      const taken = await idem.updateOne({ _id, msg: existing.msg, done: false }, { $set: { msg: msgId, at: now } });
      return taken.modifiedCount === 1 ? { state: 'claimed' } : { state: 'in-progress', id: existing.msg };
    },
    async complete(app, key) {
      await idem.updateOne({ _id: `${app}|${key}` }, { $set: { done: true } });
    },
    async release(app, key) {
      await idem.deleteOne({ _id: `${app}|${key}` });
    },
  };
  return keys;
}
