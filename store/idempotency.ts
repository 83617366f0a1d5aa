import type { Collection, Db } from 'mongodb';
import { duplicateIndexes, ensureExpiryIndex } from '../platform/mongo.js';
import { createWriteBatcher, type WriteBatcher } from './writeBatcher.js';

/** A claim: the key is being handled (or was) for message `msg`. */
interface ClaimRecord {
  _id: string;
  /** The id of the message the key stands for (the claimer's id). */
  msg: string;
  /** Written true by versions that completed a key in place; completions are now in the done collection. */
  done?: boolean;
  at: Date;
  exp: Date;
}

/** A completed key: its message is durable. Written once, by insert (no update on the hot path). */
interface DoneRecord {
  _id: string;
  msg: string;
  exp: Date;
}

export type IdempotencyClaim = { state: 'claimed' } | { state: 'duplicate'; id: string } | { state: 'in-progress'; id: string };

/** How long a key is remembered by default (IDEMPOTENCY_WINDOW_SECONDS in the collector). */
export const DEFAULT_WINDOW_MS = 24 * 3600 * 1000;
/**
 * A claim not completed within this long is considered abandoned and may be
 * taken over. Longer than a submission can take (the collector bounds each
 * one by SUBMIT_DEADLINE_MS), so a claim is never taken from a submission that
 * is still running: that would store the message twice under two ids.
 */
export const STALE_MS = 30_000;

export interface ClaimRequest {
  app: string;
  key: string;
  msgId: string;
  /** Remember the key at least until then (the message's expiry), even past the window. */
  keepUntil?: Date;
}

export interface IdempotencyKeys {
  /**
   * Claims a key for `msgId`. A key whose first submission never finished
   * (crash, store failure) is taken over after STALE_MS, so it cannot stay
   * stuck pointing at a message that was never accepted. Claims of concurrent
   * callers are written together (one insertMany).
   */
  claim(app: string, key: string, msgId: string): Promise<IdempotencyClaim>;
  /**
   * Claims many keys with one insert; only keys seen before cost more round
   * trips (a key twice in one call: the later one finds the first in progress).
   * Results are in the order of `requests`.
   */
  claimMany(claims: ClaimRequest[]): Promise<IdempotencyClaim[]>;
  /**
   * Marks the key done for the message claimed as `claimedId`, once that message
   * is durable: later submissions with the key are its duplicates. Completions
   * of concurrent callers are written together (one insertMany). `msgId`
   * replaces the id (a caller that learns it later); `keepUntil` (the message's
   * expiry) keeps the key past the window for as long as the message lives, so a
   * push.events record read again by a replay finds the message it became.
   * Resolves false when the key was completed for another message meanwhile.
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
  /** Creates the expiry indexes; resolves false when the server lacks TTL indexes (call sweepExpired instead). */
  ensureIndexes(): Promise<boolean>;
  /** Deletes expired keys; for servers without TTL indexes. Returns how many. */
  sweepExpired(): Promise<number>;
  /** Writes completions still queued. */
  close(): Promise<void>;
}

/**
 * Idempotency keys in two collections, one document per (app, key) in each:
 *
 *   idempotency       the claim (inserted when a submission starts)
 *   idempotency_done  the completion (inserted once its message is durable)
 *
 * Both are written by insert, in batches (a push.events batch claims all its
 * keys in one insertMany; completions of concurrent submissions share one
 * insertMany), so the hot path has no update, which FerretDB on PostgreSQL
 * runs ~20x slower than a batched insert. Every read is by `_id`, an indexed
 * equality on FerretDB as on MongoDB, and only for keys seen before.
 */
export interface IdempotencyOptions {
  windowMs?: number;
  collection?: string;
  /**
   * Whether a message is durably stored (persistent messages only). A claim left in
   * progress (its holder crashed, or could not complete it) whose message is stored
   * is completed for it rather than taken over: taking it over would store the same
   * submission a second time, under another id.
   */
  isStored?: (msgId: string) => Promise<boolean>;
}

class MongoIdempotencyKeys implements IdempotencyKeys {
  private readonly windowMs: number;
  private readonly isStored?: (msgId: string) => Promise<boolean>;
  private readonly claims: Collection<ClaimRecord>;
  private readonly dones: Collection<DoneRecord>;
  /** Claims this process gave up on (bounded: oldest forgotten first). */
  private readonly givenUp = new Set<string>();
  private readonly doneWriter: WriteBatcher<DoneRecord, boolean>;
  /**
   * Claims of concurrent HTTP submissions share one insertMany. A key twice in one batch is
   * claimed by its first request; the second meets it (duplicate key) and finds it in progress.
   */
  private readonly claimWriter: WriteBatcher<ClaimRequest, IdempotencyClaim>;

  constructor(db: Db, { windowMs = DEFAULT_WINDOW_MS, collection = 'idempotency', isStored }: IdempotencyOptions) {
    this.windowMs = windowMs;
    this.isStored = isStored;
    this.claims = db.collection<ClaimRecord>(collection);
    this.dones = db.collection<DoneRecord>(`${collection}_done`);
    this.doneWriter = createWriteBatcher(
      (recs: DoneRecord[]) => this.writeDones(recs),
      () => 128,
      { what: 'the idempotency store' },
    );
    this.claimWriter = createWriteBatcher(
      (reqs: ClaimRequest[]) => this.claimMany(reqs),
      () => 128,
      { what: 'the idempotency store' },
    );
  }

  claim(app: string, key: string, msgId: string): Promise<IdempotencyClaim> {
    return this.claimWriter.add({ app, key, msgId });
  }

  async claimMany(requests: ClaimRequest[]): Promise<IdempotencyClaim[]> {
    if (requests.length === 0) return [];
    const now = new Date();
    const out: IdempotencyClaim[] = requests.map(() => ({ state: 'claimed' }));
    const docs = requests.map((c) => this.claimRecord(c, now));
    const taken: number[] = [];
    if (docs.length === 1) {
      try {
        await this.claims.insertOne(docs[0]!);
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        taken.push(0);
      }
    } else {
      try {
        await this.claims.insertMany(docs, { ordered: false });
      } catch (err) {
        taken.push(...duplicateIndexes(err, docs.length));
      }
    }
    for (const i of taken) out[i] = await this.resolveExisting(requests[i]!, now);
    return out;
  }

  complete(app: string, key: string, claimedId: string, { msgId, keepUntil }: { msgId?: string; keepUntil?: Date } = {}): Promise<boolean> {
    return this.doneWriter.add({ _id: `${app}|${key}`, msg: msgId ?? claimedId, exp: this.expiry(new Date(), keepUntil) });
  }

  async release(app: string, key: string, claimedId: string): Promise<void> {
    await this.claims.deleteOne({ _id: `${app}|${key}`, msg: claimedId, done: { $ne: true } });
  }

  gaveUp(claimedId: string): void {
    if (this.givenUp.size >= 10_000) this.givenUp.delete(this.givenUp.values().next().value!);
    this.givenUp.add(claimedId);
  }

  async ensureIndexes(): Promise<boolean> {
    const both = await Promise.all([ensureExpiryIndex(this.claims, 'exp'), ensureExpiryIndex(this.dones, 'exp')]);
    return both.every(Boolean);
  }

  async sweepExpired(): Promise<number> {
    const now = new Date();
    const [a, b] = await Promise.all([this.claims.deleteMany({ exp: { $lt: now } }), this.dones.deleteMany({ exp: { $lt: now } })]);
    return a.deletedCount + b.deletedCount;
  }

  async close(): Promise<void> {
    await this.claimWriter.close();
    await this.doneWriter.close();
  }

  private expiry(now: Date, keepUntil?: Date): Date {
    return new Date(Math.max(now.getTime() + this.windowMs, keepUntil?.getTime() ?? 0));
  }

  private claimRecord(c: ClaimRequest, now: Date): ClaimRecord {
    return { _id: `${c.app}|${c.key}`, msg: c.msgId, at: now, exp: this.expiry(now, c.keepUntil) };
  }

  /** Completions in one insertMany; one whose insert met an existing record goes through completeOver. */
  private async writeDones(recs: DoneRecord[]): Promise<boolean[]> {
    const out = recs.map(() => true);
    let taken: number[] = [];
    try {
      await this.dones.insertMany(recs, { ordered: false });
    } catch (err) {
      taken = duplicateIndexes(err, recs.length);
    }
    for (const i of taken) out[i] = await this.completeOver(recs[i]!);
    return out;
  }

  /** A completion whose insert met an existing record: an expired one is replaced, a live one stands. */
  private async completeOver(rec: DoneRecord): Promise<boolean> {
    const now = new Date();
    const replaced = await this.dones.replaceOne({ _id: rec._id, exp: { $lte: now } }, rec);
    if (replaced.modifiedCount === 1) return true;
    const existing = await this.dones.findOne({ _id: rec._id });
    return existing?.msg === rec.msg;
  }

  /** The live completion of a key, if any. */
  private async doneOf(_id: string, now: Date): Promise<DoneRecord | null> {
    const d = await this.dones.findOne({ _id });
    return d && d.exp.getTime() > now.getTime() ? d : null;
  }

  /** The key was seen before: a duplicate, still in progress, or abandoned (or expired) and taken over. */
  private async resolveExisting(c: ClaimRequest, now: Date, depth = 0): Promise<IdempotencyClaim> {
    const _id = `${c.app}|${c.key}`;
    if (depth > 3) throw new Error(`idempotency key ${_id} keeps changing under its claim`);
    const done = await this.doneOf(_id, now);
    if (done) return { state: 'duplicate', id: done.msg };
    const existing = await this.claims.findOne({ _id });
    if (!existing) {
      try {
        await this.claims.insertOne(this.claimRecord(c, now));
        return { state: 'claimed' };
      } catch (err) {
        if ((err as { code?: number }).code !== 11000) throw err;
        return this.resolveExisting(c, now, depth + 1);
      }
    }
    // Past its expiry but not yet swept (no TTL index on FerretDB): forgotten, as documented.
    if (existing.exp.getTime() <= now.getTime()) {
      const renewed = await this.claims.replaceOne({ _id, msg: existing.msg, exp: existing.exp }, this.claimRecord(c, now));
      return renewed.modifiedCount === 1 ? { state: 'claimed' } : this.resolveExisting(c, now, depth + 1);
    }
    if (existing.done) return { state: 'duplicate', id: existing.msg };
    if (now.getTime() - existing.at.getTime() < STALE_MS && !this.givenUp.has(existing.msg)) return { state: 'in-progress', id: existing.msg };
    this.givenUp.delete(existing.msg);
    if (this.isStored && (await this.isStored(existing.msg))) {
      await this.doneWriter.add({ _id, msg: existing.msg, exp: existing.exp });
      return { state: 'duplicate', id: existing.msg };
    }
    const taken = await this.claims.updateOne({ _id, msg: existing.msg }, { $set: { msg: c.msgId, at: now, exp: this.expiry(now, c.keepUntil) } });
    return taken.modifiedCount === 1 ? { state: 'claimed' } : this.resolveExisting(c, now, depth + 1);
  }
}

export function createIdempotencyKeys(db: Db, opts: IdempotencyOptions = {}): IdempotencyKeys {
  return new MongoIdempotencyKeys(db, opts);
}
