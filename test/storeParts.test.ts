import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, type Db } from 'mongodb';
import { createMessageStore, inboxCollection } from '../common/src/messageStore.js';
import { createIdempotencyKeys } from '../common/src/idempotencyKeys.js';
import { bucketName, COLLECTION_BUCKETS } from '../common/src/mongo.js';
import { stack as infra, uniqueId } from './support/env.js';

describe('message store split in collection parts', () => {
  let client: MongoClient;
  let db: Db;
  before(async () => {
    client = new MongoClient(infra.mongoUrl);
    db = client.db(uniqueId('storeparts').replace(/[^A-Za-z0-9]/g, ''));
  });
  after(async () => {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  });

  test('part names are stable and spread users over the parts', () => {
    assert.equal(bucketName('inboxes', 'a|alice'), bucketName('inboxes', 'a|alice'));
    assert.match(bucketName('inboxes', 'a|alice'), /^inboxes_[0-9a-f]{2}$/);
    const used = new Set(Array.from({ length: 1000 }, (_, i) => bucketName('inboxes', `a|u${i}`)));
    assert.ok(used.size > COLLECTION_BUCKETS * 0.9, `1000 users used only ${used.size} parts`);
  });

  test('inboxes: new and existing ones in one call, connect reads in id order without acked ids', { timeout: 30_000 }, async () => {
    const store = createMessageStore(db);
    const exp = Date.now() + 60_000;
    const users = Array.from({ length: 40 }, (_, i) => `u${i}`);
    await store.appendToInboxes(users.map((user) => ({ app: 'a', user, items: [{ m: '0001', e: exp }], compact: false })));
    // half of them get a second message together with 20 new users
    const more = [...users.slice(0, 20), ...Array.from({ length: 20 }, (_, i) => `n${i}`)];
    await store.appendToInboxes(more.map((user) => ({ app: 'a', user, items: [{ m: '0002', e: exp }], compact: false })));
    const u0 = await inboxCollection(db, 'a', 'u0').findOne({ _id: 'a|u0' });
    assert.deepEqual(u0?.items.map((i) => i.m), ['0001', '0002']);
    const n0 = await inboxCollection(db, 'a', 'n0').findOne({ _id: 'a|n0' });
    assert.deepEqual(n0?.items.map((i) => i.m), ['0002']);
    for (const m of ['0001', '0002']) {
      await store.store({ _id: m, app: 'a', target: 'USER', users: ['u0'], payload: '{}', persistent: true, createdAt: new Date(), expiresAt: new Date(exp), traceId: m });
    }
    const opts = { afterId: '', limit: 10, maxAttempts: 3 };
    assert.deepEqual((await store.loadUndelivered('a', 'u0', 'phone', opts)).map((m) => m._id), ['0001', '0002']);
    await store.ack('a', 'u0', 'phone', ['0001']);
    assert.deepEqual((await store.loadUndelivered('a', 'u0', 'phone', opts)).map((m) => m._id), ['0002']);
    assert.deepEqual(await store.loadUndelivered('a', 'nobody', 'phone', opts), []);
    assert.deepEqual(await store.deviceState('a', 'u0', 'phone'), { acked: ['0001'], tries: {} });
  });

  test('claimMany: new keys claimed, a completed key is a duplicate with its message id, a pending one in progress', { timeout: 30_000 }, async () => {
    const idem = createIdempotencyKeys(db);
    assert.deepEqual(await idem.claim('a', 'done', 'M1'), { state: 'claimed' });
    await idem.complete('a', 'done', 'M1b');
    assert.deepEqual(await idem.claim('a', 'pending', 'M2'), { state: 'claimed' });
    const keys = Array.from({ length: 100 }, (_, i) => ({ app: 'a', key: `k${i}`, msgId: `X${i}` }));
    const res = await idem.claimMany([{ app: 'a', key: 'done', msgId: 'N1' }, ...keys, { app: 'a', key: 'pending', msgId: 'N2' }]);
    assert.deepEqual(res[0], { state: 'duplicate', id: 'M1b' });
    assert.deepEqual(res.at(-1), { state: 'in-progress', id: 'M2' });
    assert.ok(res.slice(1, -1).every((r) => r.state === 'claimed'));
    assert.deepEqual(await idem.claim('a', 'k7', 'again'), { state: 'in-progress', id: 'X7' });
  });
});
