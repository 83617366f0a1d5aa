import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createLease } from '../platform/lease.js';
import { stack, uniqueId } from './support/env.js';

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
  // Let the short lease lapse: wait until Redis has expired the key.
  const deadline = Date.now() + 5000;
  while ((await redis.exists(key)) === 1) {
    assert.ok(Date.now() < deadline, 'the 50 ms lease never expired');
    await new Promise((r) => setTimeout(r, 20));
  }
  assert.equal(await next.acquire(), true);
  assert.equal(await slow.extend(), false);
  await slow.release();
  assert.equal(await redis.get(key), next.owner);
  const ttl = await redis.pttl(key);
  assert.ok(ttl > 5000, `the next holder's lease keeps its lifetime (pttl ${ttl})`);
  await next.release();
});
