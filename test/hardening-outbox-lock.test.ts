import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import type { StoredMessage } from '../store/messages.js';
import { newId } from '../protocol/ids.js';
import { startStack, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { stack as infra } from './support/env.js';

/**
 * Issue 12 #16 (outbox lease): the sweeper's lease in Redis is extended and
 * released only by its holder. A collector whose lease was taken over must
 * neither extend nor delete the new holder's lease, and must stop sweeping.
 */
describe('outbox lease', () => {
  let s: TestStack;
  let redis: Redis;
  const LOCK = 'push:outbox:lock';
  const OUTBOX_INTERVAL_MS = 300; // lease: 5 x 300 = 1500 ms
  before(async () => {
    // One entry per step, so a sweep of a few hundred entries lasts seconds and keeps extending its lease.
    s = await startStack({ env: { COLLECTOR_OUTBOX_BATCH: '1', COLLECTOR_OUTBOX_INTERVAL_MS: String(OUTBOX_INTERVAL_MS) } });
    redis = new Redis(infra.redisUrl, { keyPrefix: s.env.REDIS_KEY_PREFIX });
  });
  after(async () => {
    redis?.disconnect();
    await s?.stop();
  });

  const republished = async () => {
    const text = await (await fetch(`${s.collector.url}/metrics`)).text();
    return Number(/^push_outbox_republished_total(?:\{[^}]*\})? ([0-9.e+]+)$/m.exec(text)?.[1] ?? 'NaN');
  };

  test("a sweeper whose lease was taken over neither extends nor releases the new holder's lease, and stops sweeping", { timeout: 90_000 }, async () => {
    const db = s.mongo.db(s.env.MONGO_DB);
    const at = new Date(Date.now() - 60_000);
    const stored: StoredMessage[] = Array.from({ length: 400 }, () => {
      const id = newId();
      return {
        _id: id,
        app: s.app,
        target: 'USER',
        users: ['lease-user'],
        payload: '"x"',
        persistent: true,
        createdAt: at,
        expiresAt: new Date(Date.now() + 3_600_000),
        traceId: id,
      };
    });
    // As the collector stores them (an outbox batch, then its messages), a batch per message so the sweep sees a long outbox at once.
    await db
      .collection<{ _id: string; ids: string[]; at: Date }>('outbox_batches')
      .insertMany(stored.map((m) => ({ _id: m._id, ids: [m._id], at: m.createdAt })));
    await db.collection<StoredMessage>('messages').insertMany(stored);

    const holder = await eventually(() => redis.get(LOCK), { timeoutMs: 10_000, intervalMs: 5, what: 'the collector holding the outbox lease' });
    assert.notEqual(holder, 'second-sweeper');
    // Another sweeper takes the lease over (as if the collector's had lapsed), for 20 s.
    await redis.set(LOCK, 'second-sweeper', 'PX', 20_000);
    const countAtTakeover = await republished();

    // The collector meets the lost lease at its next step (every few ms) or within its interval.
    await new Promise((r) => setTimeout(r, OUTBOX_INTERVAL_MS * 5));
    assert.equal(await redis.get(LOCK), 'second-sweeper', "the new holder's lease was not released");
    const ttl = await redis.pttl(LOCK);
    assert.ok(
      ttl > 20_000 - OUTBOX_INTERVAL_MS * 5 - 1000,
      `the new holder's lease was not re-armed by the old holder (pttl ${ttl} ms: the old code re-armed it with its own lease)`,
    );
    const swept = (await republished()) - countAtTakeover;
    assert.ok(swept <= 2, `the collector stopped sweeping without the lease (${swept} more entries republished)`);
    const left = await db.collection('outbox_batches').countDocuments({});
    assert.ok(left > 0, 'entries remain for the lease holder');

    // The holder lets go: the collector sweeps again and finishes the outbox.
    await redis.del(LOCK);
    await eventually(async () => (await db.collection('outbox_batches').countDocuments({})) === 0, {
      timeoutMs: 60_000,
      intervalMs: 200,
      what: 'outbox swept after the lease came back',
    });
  });
});
