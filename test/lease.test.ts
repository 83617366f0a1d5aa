import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createLease } from '../platform/lease.js';
import { stack, uniqueId } from './support/env.js';
import { eventually } from './support/eventually.js';

/** The Redis lease (platform/lease.ts) on the shared Redis: one holder at a time, and a lapsed holder cannot touch its successor's lease. */
let redis: Redis;
before(() => {
  redis = new Redis(stack.redisUrl, { maxRetriesPerRequest: 1 });
});
after(() => redis.quit());

test('one holder at a time; released, it can be taken by another', async () => {
  const key = uniqueId('push:test-lease');
  const a = createLease(redis, key, 10_000);
  const b = createLease(redis, key, 10_000);
  assert.notEqual(a.owner, b.owner);
  assert.equal(await a.acquire(), true);
  assert.equal(await b.acquire(), false);
  assert.equal(await b.extend(), false, 'only the holder extends');
  await b.release(); // not the holder: nothing happens
  assert.equal(await redis.get(key), a.owner);
  assert.equal(await a.extend(), true);
  await a.release();
  assert.equal(await redis.get(key), null);
  assert.equal(await b.acquire(), true);
  await b.release();
});

test('a holder whose lease lapsed can neither extend nor release the next holder’s', async () => {
  const key = uniqueId('push:test-lease');
  const slow = createLease(redis, key, 50);
  const next = createLease(redis, key, 10_000);
  assert.equal(await slow.acquire(), true);
  // Let the short lease lapse: Redis expires the key.
  await eventually(async () => (await redis.exists(key)) === 0, { what: 'the 50 ms lease to expire', timeoutMs: 5000, intervalMs: 20 });
  assert.equal(await next.acquire(), true);
  assert.equal(await slow.extend(), false);
  await slow.release();
  assert.equal(await redis.get(key), next.owner);
  const ttl = await redis.pttl(key);
  assert.ok(ttl > 5000, `the next holder's lease keeps its lifetime (pttl ${ttl})`);
  await next.release();
});
