import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';

/**
 * A lease on a Redis key: held by one owner at a time, for `ttlMs` unless
 * extended. Taking it is `SET NX PX`; extending and releasing compare the
 * owner and act in one script, so a holder whose lease lapsed (and was taken
 * by someone else meanwhile) can neither extend nor release the new holder's.
 * The owner id is random per lease object: two processes, or two objects in
 * one process, never share it.
 */
export interface Lease {
  readonly key: string;
  readonly owner: string;
  /** Takes the lease if nobody holds it; true when this owner holds it now. */
  acquire(): Promise<boolean>;
  /** Extends the lease for another `ttlMs`; false when this owner no longer holds it. */
  extend(): Promise<boolean>;
  /** Gives the lease up if this owner still holds it. Never throws. */
  release(): Promise<void>;
}

const EXTEND_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0`;
const RELEASE_IF_OWNER = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0`;

type LeaseRedis = Redis & {
  pushLeaseExtend(key: string, owner: string, ttlMs: number): Promise<number>;
  pushLeaseRelease(key: string, owner: string): Promise<number>;
};

export function createLease(redis: Redis, key: string, ttlMs: number): Lease {
  const r = redis as LeaseRedis;
  if (typeof r.pushLeaseExtend !== 'function') {
    redis.defineCommand('pushLeaseExtend', { numberOfKeys: 1, lua: EXTEND_IF_OWNER });
    redis.defineCommand('pushLeaseRelease', { numberOfKeys: 1, lua: RELEASE_IF_OWNER });
  }
  const owner = `${process.pid}-${randomBytes(6).toString('base64url')}`;
  return {
    key,
    owner,
    acquire: async () => (await redis.set(key, owner, 'PX', ttlMs, 'NX')) === 'OK',
    extend: async () => (await r.pushLeaseExtend(key, owner, ttlMs)) === 1,
    release: async () => {
      await r.pushLeaseRelease(key, owner).catch(() => 0);
    },
  };
}
