import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, type Db } from 'mongodb';
import { Redis } from 'ioredis';
import { startPrivateRedis } from '../infra/stack.js';
import { createDeliveryStore, type DeliveryStore, type PendingRequest } from '../store/deliveryStore.js';
import { createHotIndex } from '../store/hotIndex.js';
import { hotIndexKey, userKey } from '../store/keys.js';
import { BROADCAST_INBOX } from '../protocol/tokens.js';
import { newId } from '../protocol/ids.js';
import { stack as infra, uniqueId } from './support/env.js';

/**
 * The Redis hot index of stored deliveries (store/hotIndex.ts) on a private Redis (FLUSHALL is
 * safe there) and the shared FerretDB: what a resume reads from it equals what it reads from
 * MongoDB alone, a write during a load never leaves a stale index, and Redis losing its data
 * at any point loses nothing.
 */
describe('delivery hot index', () => {
  let redisServer: Awaited<ReturnType<typeof startPrivateRedis>>;
  let redis: Redis;
  let client: MongoClient;
  let db: Db;
  /** With the hot index (as every service runs it). */
  let hot: DeliveryStore;
  /** MongoDB alone: the reference. */
  let cold: DeliveryStore;
  /** One app per test: the broadcasts of one are not another's. */
  let app = 'a';
  const exp = (s = 600) => Date.now() + s * 1000;
  const opts = { maxAttempts: 3 };
  const req = (user: string, device: string, afterId = '', limit = 100): PendingRequest => ({ app, user, device, afterId, limit });
  const both = async (reqs: PendingRequest[]) => {
    const [h, c] = [await hot.pendingFor(reqs, opts), await cold.pendingFor(reqs, opts)];
    return { h, c };
  };
  const deliver = (user: string, m: string, extra: { k?: string; e?: number } = {}) =>
    hot.appendDeliveries([{ app, user, m, e: extra.e ?? exp(), p: `p-${m}`, c: Date.now(), ...(extra.k ? { k: extra.k } : {}) }]);

  before(async () => {
    redisServer = await startPrivateRedis();
    redis = new Redis(`redis://127.0.0.1:${redisServer.port}`, { keyPrefix: 'hot-test:', maxRetriesPerRequest: 1 });
    redis.on('error', () => undefined); // the restart in (c)
    client = new MongoClient(infra.mongoUrl);
    db = client.db(uniqueId('hotindex').replace(/[^A-Za-z0-9]/g, ''));
    hot = createDeliveryStore(db, { redis });
    cold = createDeliveryStore(db);
    await hot.ensureIndexes();
  });
  after(async () => {
    hot?.close();
    await db?.dropDatabase().catch(() => undefined);
    await client?.close();
    redis?.disconnect();
    await redisServer?.dispose();
  });

  test(
    '(a) a resume served from the hot index equals the one from MongoDB, through writes, acks, attempts, collapse keys and broadcasts',
    { timeout: 60_000 },
    async () => {
      const [m1, m2, m3, m4, b1, m5, m6] = Array.from({ length: 7 }, () => newId());
      await deliver('ann', m1);
      await deliver('ann', m2, { k: 'score' });
      await deliver(BROADCAST_INBOX, b1);
      const reqs = [req('ann', 'phone'), req('ann', 'tablet'), req('bo', 'phone')];
      const first = await both(reqs); // misses: loaded from MongoDB, indexes installed
      assert.deepEqual(first.h, first.c);
      assert.deepEqual(
        first.h[0]!.map((p) => p.id),
        [m1, m2, b1],
      );
      assert.equal(await redis.exists(hotIndexKey(userKey(app, 'ann'))), 1, 'index installed');
      assert.equal(await redis.exists(hotIndexKey(userKey(app, 'bo'))), 1, 'an empty inbox is indexed too');

      // Writes after the install go to the index.
      await deliver('ann', m3, { k: 'score' }); // supersedes m2
      await deliver('ann', m4, { e: Date.now() + 300 }); // expires soon
      await deliver('bo', m5);
      await hot.ack([{ app, user: 'ann', device: 'phone', ids: [m1], expiresAt: [exp()] }]);
      await hot.recordAttempts([{ app, user: 'ann', device: 'tablet', id: m1, conn: 'c1', attempt: 1, expiresAt: exp() }], 3);
      await hot.recordAttempts(
        ['c2', 'c3'].map((conn, i) => ({ app, user: 'ann', device: 'tablet', id: b1, conn, attempt: i + 1, expiresAt: exp() })),
        3,
      );
      await hot.recordAttempts([{ app, user: 'ann', device: 'tablet', id: b1, conn: 'c4', attempt: 3, expiresAt: exp() }], 3); // parked for the tablet
      const hits = hot.hotHits();
      const second = await both(reqs);
      assert.ok(hot.hotHits() >= hits + 2, 'served from the hot index');
      assert.deepEqual(second.h, second.c);
      assert.deepEqual(
        second.h[0]!.map((p) => p.id),
        [m3, m4, b1],
      );
      assert.deepEqual(
        second.h[1]!.map((p) => [p.id, p.attempts]),
        [
          [m1, 1],
          [m3, 0],
          [m4, 0],
        ],
      );
      assert.deepEqual(
        second.h[2]!.map((p) => p.id),
        [b1, m5],
      );
      // Pages, expiry.
      await new Promise((r) => setTimeout(r, 400));
      const paged = await both([req('ann', 'phone', m1, 1), req('ann', 'tablet', '', 2)]);
      assert.deepEqual(paged.h, paged.c);
      assert.deepEqual(
        paged.h[0]!.map((p) => p.id),
        [m3],
      );
      await deliver('ann', m6);
      const third = await both(reqs);
      assert.deepEqual(third.h, third.c);
      assert.deepEqual(await hot.deviceState(app, 'ann', 'tablet'), await cold.deviceState(app, 'ann', 'tablet'));

      // Forgetting deliveries in MongoDB drops the index; the next read reloads.
      await hot.forgetDeliveries(app, 'ann');
      assert.equal(await redis.exists(hotIndexKey(userKey(app, 'ann'))), 0, 'index dropped');
      const forgotten = await both(reqs);
      assert.deepEqual(forgotten.h, forgotten.c);
      assert.deepEqual(
        forgotten.h[0]!.map((p) => p.id),
        [b1],
      );
      // A sweep drops the indexes of the users whose records it deleted.
      await deliver('cy', newId(), { e: Date.now() + 200 });
      await hot.pendingFor([req('cy', 'phone')], opts);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok((await hot.sweepExpired()) >= 1);
      assert.equal(await redis.exists(hotIndexKey(userKey(app, 'cy'))), 0, 'index dropped by the sweep');
    },
  );

  test('(b) a write that lands while a load reads MongoDB makes the install fail: the index is never stale', { timeout: 60_000 }, async () => {
    app = 'b';
    const index = createHotIndex(redis);
    const u = userKey(app, 'dee');
    const [m1, m2] = [newId(), newId()];
    await deliver('dee', m1);
    // A loader: the version, then its MongoDB read...
    const seen = (await index.read([u])).get(u)!;
    assert.ok('version' in seen, 'a miss');
    const records = (await db.collection<{ _id: string; u: string; m: string; e: Date }>('deliveries').find({ u }).toArray()).map((d) => ({
      _id: d._id,
      r: { m: d.m, e: d.e.getTime() },
    }));
    // ...a writer stores m2 meanwhile (MongoDB, then the version)...
    await deliver('dee', m2);
    // ...and the loader's install with what it read before is refused.
    assert.equal(await index.install([{ u, version: seen.version, records }]), 0);
    assert.equal(await redis.exists(hotIndexKey(u)), 0);
    const after = await both([req('dee', 'phone')]);
    assert.deepEqual(after.h, after.c);
    assert.deepEqual(
      after.h[0]!.map((p) => p.id),
      [m1, m2],
    );

    // Concurrent: resumes of many devices of a few users while deliveries, acks and attempts are written.
    const users = ['e0', 'e1', 'e2', 'e3'];
    const written = new Map<string, string[]>(users.map((x) => [x, []]));
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; i < 15; i++) {
        const user = users[(i + w) % users.length]!;
        const m = newId();
        written.get(user)!.push(m);
        await deliver(user, m);
        if (i % 3 === 0) await hot.ack([{ app, user, device: 'd0', ids: [m], expiresAt: [exp()] }]);
        if (i % 4 === 0) await hot.recordAttempts([{ app, user, device: 'd1', id: m, conn: `w${w}`, attempt: 1, expiresAt: exp() }], 3);
      }
    });
    const readers = Array.from({ length: 4 }, async () => {
      for (let i = 0; i < 20; i++) {
        await hot.pendingFor(
          users.flatMap((user) => ['d0', 'd1', 'd2'].map((d) => req(user, d))),
          opts,
        );
        if (i % 5 === 4) await Promise.all(users.map((user) => redis.del(hotIndexKey(userKey(app, user))))); // TTL ran out
      }
    });
    await Promise.all([...writers, ...readers]);
    const hits = hot.hotHits();
    const reqs = users.flatMap((user) => ['d0', 'd1', 'd2'].map((d) => req(user, d)));
    await hot.pendingFor(reqs, opts); // installs what is missing
    const final = await both(reqs);
    assert.ok(hot.hotHits() > hits, 'the last read was served by the index');
    assert.deepEqual(final.h, final.c);
    for (const user of users) {
      const i = users.indexOf(user) * 3 + 2; // d2: no acks, no attempts
      assert.deepEqual(
        final.h[i]!.map((p) => p.id),
        [...written.get(user)!].sort(),
        `${user}: every delivery`,
      );
    }
  });

  test('(c) Redis losing everything (FLUSHALL) at any point loses nothing: reads fall back to MongoDB and reinstall', { timeout: 60_000 }, async () => {
    app = 'c';
    const index = createHotIndex(redis);
    const [m1, m2, m3] = [newId(), newId(), newId()];
    await deliver('fay', m1);
    await hot.pendingFor([req('fay', 'phone')], opts); // installed
    await redis.flushall();
    await deliver('fay', m2); // no index to add to: not recreated by a writer
    assert.equal(await redis.exists(hotIndexKey(userKey(app, 'fay'))), 0, 'a writer never creates an index');
    await hot.ack([{ app, user: 'fay', device: 'phone', ids: [m1], expiresAt: [exp()] }]);
    const r1 = await both([req('fay', 'phone'), req('fay', 'watch')]);
    assert.deepEqual(r1.h, r1.c);
    assert.deepEqual(
      r1.h[0]!.map((p) => p.id),
      [m2],
    );
    assert.deepEqual(
      r1.h[1]!.map((p) => p.id),
      [m1, m2],
    );

    // FLUSHALL between a loader's version read and its install, with a write in between.
    const u = userKey(app, 'fay');
    await redis.del(hotIndexKey(u));
    const seen = (await index.read([u])).get(u)!;
    assert.ok('version' in seen);
    const stale = (await db.collection<{ _id: string; u: string; m: string; e: Date; v?: string }>('deliveries').find({ u }).toArray()).map((d) => ({
      _id: d._id,
      r: { m: d.m, e: d.e.getTime(), ...(d.v ? { v: d.v } : {}) },
    }));
    await deliver('fay', m3);
    await redis.flushall();
    assert.equal(await index.install([{ u, version: seen.version, records: stale }]), 0, 'a version lost with Redis never matches again');
    const r2 = await both([req('fay', 'phone')]);
    assert.deepEqual(r2.h, r2.c);
    assert.deepEqual(
      r2.h[0]!.map((p) => p.id),
      [m2, m3],
    );

    // Redis away: reads and writes go on against MongoDB; back (empty), reads reinstall.
    await redisServer.restart();
    const r3 = await both([req('fay', 'phone'), req('fay', 'watch')]);
    assert.deepEqual(r3.h, r3.c);
    assert.deepEqual(
      r3.h[1]!.map((p) => p.id),
      [m1, m2, m3],
    );
  });
});
