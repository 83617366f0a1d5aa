import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createIdempotencyKeys } from '../store/idempotency.js';
import { testDatabase } from './support/testDatabase.js';

describe('idempotency keys', () => {
  const mongo = testDatabase('storeparts');

  test('claimMany: new keys claimed, a completed key is a duplicate with its message id, a pending one in progress', { timeout: 30_000 }, async () => {
    const idem = createIdempotencyKeys(mongo.db);
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

  test('claims and completions of concurrent callers are batched; one key claimed at once twice: one claim, one in progress', { timeout: 30_000 }, async () => {
    const idem = createIdempotencyKeys(mongo.db, { collection: 'idem_batched' });
    const claims = await Promise.all([
      idem.claim('a', 'same', 'S1'),
      idem.claim('a', 'same', 'S2'),
      ...Array.from({ length: 20 }, (_, i) => idem.claim('a', `c${i}`, `C${i}`)),
    ]);
    assert.deepEqual(claims.slice(0, 2), [{ state: 'claimed' }, { state: 'in-progress', id: 'S1' }]);
    assert.ok(claims.slice(2).every((c) => c.state === 'claimed'));
    // Completions: the first for a key stands, a second one for another message is refused.
    assert.deepEqual(await Promise.all([idem.complete('a', 'same', 'S1'), idem.complete('a', 'c0', 'C0'), idem.complete('a', 'same', 'S9')]), [
      true,
      true,
      false,
    ]);
    assert.deepEqual(await idem.claim('a', 'same', 'S3'), { state: 'duplicate', id: 'S1' });
    assert.deepEqual(
      await idem.claimMany([
        { app: 'a', key: 'c0', msgId: 'Z' },
        { app: 'a', key: 'c1', msgId: 'Z1' },
      ]),
      [
        { state: 'duplicate', id: 'C0' },
        { state: 'in-progress', id: 'C1' },
      ],
    );
    await idem.close();
    await assert.rejects(idem.claim('a', 'late', 'L'), (err: { code?: string }) => err.code === 'SHUTTING_DOWN');
  });

  test('an expired key is forgotten: claimed again and completed over its old completion; keepUntil outlives the window', { timeout: 30_000 }, async () => {
    const idem = createIdempotencyKeys(mongo.db, { collection: 'idem_expiry', windowMs: 200 });
    assert.deepEqual(await idem.claim('a', 'k', 'E1'), { state: 'claimed' });
    assert.equal(await idem.complete('a', 'k', 'E1'), true);
    assert.deepEqual(await idem.claimMany([{ app: 'a', key: 'long', msgId: 'L1', keepUntil: new Date(Date.now() + 60_000) }]), [{ state: 'claimed' }]);
    assert.equal(await idem.complete('a', 'long', 'L1', { keepUntil: new Date(Date.now() + 60_000) }), true);
    const past = new Date(Date.now() + 250);
    while (Date.now() < past.getTime()) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(await idem.claim('a', 'k', 'E2'), { state: 'claimed' });
    assert.equal(await idem.complete('a', 'k', 'E2'), true);
    assert.deepEqual(await idem.claim('a', 'k', 'E3'), { state: 'duplicate', id: 'E2' });
    assert.deepEqual(await idem.claim('a', 'long', 'L2'), { state: 'duplicate', id: 'L1' });
    await idem.close();
  });
});
