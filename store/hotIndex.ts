import type { Redis } from 'ioredis';
import { HOT_SENTINEL, hotIndexKey, hotVersionKey } from './keys.js';
import { withTimeout } from '../platform/errors.js';
import type { Delivery } from './deliveries.js';

/**
 * The Redis hot index of the `deliveries` collection (store/deliveries.ts): per user key
 * (app|user), a hash mirroring the user's delivery, ack and attempt records (`_id` -> record),
 * so a resume reads Redis instead of one MongoDB find per device. MongoDB stays the source of
 * truth; the index is a cache that is either exact or absent:
 *
 *   - A reader that finds the hash uses it. One that misses gets the user's version (created
 *     from the server clock if absent, in the same script, so it is never empty) BEFORE it
 *     reads MongoDB, and installs what it read only if the version is still that value and no
 *     index exists (INSTALL). A write or delete that landed in MongoDB after the read began
 *     bumps the version before the install (refused) or finds the installed index (and adds to it).
 *   - Every writer, after its MongoDB insert, adds its records to the hash only if the hash
 *     exists (never creates it) and bumps the version, atomically (WRITTEN). A failed insert
 *     (some documents may have landed) and every delete of records in MongoDB drop the hash
 *     and bump the version instead (DROP).
 *   - The hash expires ttlSeconds after its install (bounded memory) and is dropped when it
 *     grows past maxFields; the version lives versionTtlSeconds after its last bump. A version
 *     recreated after it expired or after Redis lost its data starts from the server clock in
 *     microseconds, so it never comes back to a value a running load holds.
 *
 * Redis empty (restart, FLUSHALL) or away: every read misses (or fails and goes to MongoDB),
 * and nothing accepted is lost. A Redis step that fails after a MongoDB write is retried in
 * the background as a DROP until Redis answers (see `dirty`; past MAX_DIRTY users, the rest
 * rely on the index TTL, which bounds how long any index can be stale).
 */

const MAX_DIRTY = 100_000;

/** A stored record as the index keeps it: a delivery's fields, and for a receipt its device. */
export type HotRecord = Omit<Delivery, 'app' | 'user'> & {
  /** receipt: the device */
  v?: string;
  /** attempt number (a receipt without it is an ack) */
  n?: number;
};

export interface HotIndexOptions {
  /** Seconds an installed index lives (0: no index is installed; writers still keep versions). */
  ttlSeconds?: number;
  /** Seconds a version lives after its last bump. */
  versionTtlSeconds?: number;
  /** Records past which an index is not installed, or dropped when writes reach it. */
  maxFields?: number;
  /** A Redis call slower than this counts as failed (a read goes to MongoDB, a write's users are dropped later). */
  timeoutMs?: number;
  onError?: (err: Error) => void;
}

const NEW_VERSION = `local function newVersion(key, ttl)
  local t = redis.call('TIME')
  local v = t[1] .. string.format('%06d', tonumber(t[2]))
  redis.call('SET', key, v, 'EX', ttl)
  return v
end`;

/** KEYS: index, version. ARGV: versionTtl. Returns the hash (flat) when present, else the version (a string). */
const READ = `${NEW_VERSION}
local h = redis.call('HGETALL', KEYS[1])
if #h > 0 then return h end
local v = redis.call('GET', KEYS[2])
if not v then v = newVersion(KEYS[2], ARGV[1]) end
return v`;

/** KEYS: index, version. ARGV: expected version, ttl, field, value, ... Returns 1 when installed. */
const INSTALL = `if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 3, #ARGV, 1000 do
  redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1`;

/** KEYS: index, version. ARGV: versionTtl, maxFields, field, value, ... Adds to an existing index only; bumps the version. */
const WRITTEN = `${NEW_VERSION}
if redis.call('EXISTS', KEYS[1]) == 1 then
  for i = 3, #ARGV, 1000 do
    redis.call('HSET', KEYS[1], unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
  if redis.call('HLEN', KEYS[1]) > tonumber(ARGV[2]) then redis.call('DEL', KEYS[1]) end
end
if redis.call('EXISTS', KEYS[2]) == 0 then newVersion(KEYS[2], ARGV[1]) end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1`;

/** KEYS: index, version. ARGV: versionTtl. Drops the index, bumps the version. */
const DROP = `${NEW_VERSION}
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 0 then newVersion(KEYS[2], ARGV[1]) end
redis.call('INCR', KEYS[2])
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 1`;

interface HotCommands {
  pushHotRead(index: string, version: string, versionTtl: number): Promise<string[] | string>;
  pushHotInstall(index: string, version: string, expected: string, ttl: number, ...pairs: string[]): Promise<number>;
  pushHotWritten(index: string, version: string, versionTtl: number, maxFields: number, ...pairs: string[]): Promise<number>;
  pushHotDrop(index: string, version: string, versionTtl: number): Promise<number>;
}

const encode = (r: HotRecord): string => JSON.stringify(r);
const decode = (s: string): HotRecord => JSON.parse(s) as HotRecord;

/** A user's read: its records from the index, or the version to install a MongoDB read under. */
export type HotRead = { records: { _id: string; r: HotRecord }[] } | { version: string };

export class HotIndex {
  /** Whether indexes are installed at all (ttlSeconds > 0). */
  readonly enabled: boolean;
  private readonly ttl: number;
  private readonly versionTtl: number;
  private readonly maxFields: number;
  private readonly timeoutMs: number;
  private readonly onError: (err: Error) => void;
  private readonly r: Redis & HotCommands;
  /** Users whose Redis step failed after a MongoDB write: dropped again until Redis answers. */
  private readonly dirty = new Set<string>();
  private retrying: NodeJS.Timeout | undefined;

  constructor(redis: Redis, opts: HotIndexOptions = {}) {
    this.ttl = opts.ttlSeconds ?? 900;
    this.enabled = this.ttl > 0;
    this.versionTtl = Math.max(opts.versionTtlSeconds ?? 3600, this.ttl + 60);
    this.maxFields = opts.maxFields ?? 2000;
    this.timeoutMs = opts.timeoutMs ?? 1000;
    this.onError = opts.onError ?? (() => undefined);
    this.r = redis as Redis & HotCommands;
    if (typeof this.r.pushHotRead !== 'function') {
      redis.defineCommand('pushHotRead', { numberOfKeys: 2, lua: READ });
      redis.defineCommand('pushHotInstall', { numberOfKeys: 2, lua: INSTALL });
      redis.defineCommand('pushHotWritten', { numberOfKeys: 2, lua: WRITTEN });
      redis.defineCommand('pushHotDrop', { numberOfKeys: 2, lua: DROP });
    }
  }

  /** Each user's index, or its version (a miss). Throws when Redis fails (read MongoDB then, install nothing). */
  async read(users: string[]): Promise<Map<string, HotRead>> {
    const out = new Map<string, HotRead>();
    const readOne = async (u: string) => {
      const res = await this.r.pushHotRead(hotIndexKey(u), hotVersionKey(u), this.versionTtl);
      if (typeof res === 'string' || this.dirty.has(u)) {
        out.set(u, { version: typeof res === 'string' ? res : '' });
        return;
      }
      const records: { _id: string; r: HotRecord }[] = [];
      for (let i = 0; i < res.length; i += 2) if (res[i] !== HOT_SENTINEL) records.push({ _id: res[i]!, r: decode(res[i + 1]!) });
      out.set(u, { records });
    };
    await this.within(Promise.all(users.map(readOne)));
    return out;
  }

  /** Installs indexes read from MongoDB under the versions read before; refused ones are ignored. Never throws. */
  async install(loads: { u: string; version: string; records: { _id: string; r: HotRecord }[] }[]): Promise<number> {
    if (this.ttl <= 0) return 0;
    const results = await Promise.allSettled(
      loads
        .filter((l) => l.version !== '' && l.records.length <= this.maxFields)
        .map((l) =>
          this.within(
            this.r.pushHotInstall(
              hotIndexKey(l.u),
              hotVersionKey(l.u),
              l.version,
              this.ttl,
              HOT_SENTINEL,
              '1',
              ...l.records.flatMap((x) => [x._id, encode(x.r)]),
            ),
          ),
        ),
    );
    return results.filter((x) => x.status === 'fulfilled' && x.value === 1).length;
  }

  /** After records were inserted in MongoDB: adds them to existing indexes, bumps versions. Never throws. */
  async written(records: { u: string; _id: string; r: HotRecord }[]): Promise<void> {
    const byUser = new Map<string, string[]>();
    for (const x of records) {
      let pairs = byUser.get(x.u);
      if (!pairs) byUser.set(x.u, (pairs = []));
      pairs.push(x._id, encode(x.r));
    }
    const users = [...byUser.keys()];
    const results = await Promise.allSettled(
      users.map((u) => this.within(this.r.pushHotWritten(hotIndexKey(u), hotVersionKey(u), this.versionTtl, this.maxFields, ...byUser.get(u)!))),
    );
    const failed = users.filter((_, i) => results[i]!.status === 'rejected');
    if (failed.length > 0) {
      for (const u of failed) if (this.dirty.size < MAX_DIRTY) this.dirty.add(u);
      this.onError(new Error(`hot index: ${failed.length} users not updated (Redis unavailable); retrying`));
      this.retryDirty();
    }
  }

  /** After records were deleted in MongoDB (or an insert failed part way): drops the users' indexes, bumps versions. Never throws. */
  async drop(users: Iterable<string>): Promise<void> {
    const all = [...new Set(users)];
    const results = await Promise.allSettled(all.map((u) => this.within(this.r.pushHotDrop(hotIndexKey(u), hotVersionKey(u), this.versionTtl))));
    results.forEach((res, i) => {
      if (res.status === 'rejected' && this.dirty.size < MAX_DIRTY) this.dirty.add(all[i]!);
    });
    if (this.dirty.size > 0) {
      this.onError(new Error(`hot index: ${this.dirty.size} users not invalidated yet (Redis unavailable); retrying`));
      this.retryDirty();
    }
  }

  /** Stops the background retries. */
  close(): void {
    if (this.retrying) clearTimeout(this.retrying);
  }

  private within<T>(p: Promise<T>): Promise<T> {
    return withTimeout(p, this.timeoutMs, 'hot index');
  }

  private retryDirty(): void {
    if (this.retrying || this.dirty.size === 0) return;
    this.retrying = setTimeout(() => {
      this.retrying = undefined;
      const users = [...this.dirty];
      this.dirty.clear();
      void this.drop(users);
    }, 500);
    this.retrying.unref();
  }
}

export function createHotIndex(redis: Redis, opts: HotIndexOptions = {}): HotIndex {
  return new HotIndex(redis, opts);
}
