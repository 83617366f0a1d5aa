import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient, type Db } from 'mongodb';
import { createIdempotencyKeys } from '../store/idempotency.js';
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
    assert.equal(bucketName('idempotency', 'a|k1'), bucketName('idempotency', 'a|k1'));
    assert.match(bucketName('idempotency', 'a|k1'), /^idempotency_[0-9a-f]{2}$/);
    const used = new Set(Array.from({ length: 1000 }, (_, i) => bucketName('idempotency', `a|k${i}`)));
    assert.ok(used.size > COLLECTION_BUCKETS * 0.9, `1000 users used only ${used.size} parts`);
  });

  test('claimMany: new keys claimed, a completed key is a duplicate with its message id, a pending one in progress', { timeout: 30_000 }, async () => {
    const idem = createIdempotencyKeys(db);
    assert.deepEqual(await idem.claim('a', 'done', 'M1'), { state: 'claimed' });
    await idem.complete('a', 'done', 'M1', { msgId: 'M1b' });
    assert.deepEqual(await idem.claim('a', 'pending', 'M2'), { state: 'claimed' });
    const keys = Array.from({ length: 100 }, (_, i) => ({ app: 'a', key: `k${i}`, msgId: `X${i}` }));
    const res = await idem.claimMany([{ app: 'a', key: 'done', msgId: 'N1' }, ...keys, { app: 'a', key: 'pending', msgId: 'N2' }]);
    assert.deepEqual(res[0], { state: 'duplicate', id: 'M1b' });
    assert.deepEqual(res.at(-1), { state: 'in-progress', id: 'M2' });
    assert.ok(res.slice(1, -1).every((r) => r.state === 'claimed'));
    assert.deepEqual(await idem.claim('a', 'k7', 'again'), { state: 'in-progress', id: 'X7' });
  });
});
