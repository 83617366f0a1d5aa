import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compactItems, MAX_INBOX_ITEMS, userStateOf } from './deliveryRecords.js';

test('compactItems orders by id, drops expired items and replayed duplicates', () => {
  const items = [
    { m: 'B', e: 100 },
    { m: 'A', e: 100 },
    { m: 'C', e: 5 },
    { m: 'B', e: 100 },
  ];
  assert.deepEqual(
    compactItems(items, 10).map((i) => i.m),
    ['A', 'B'],
  );
});

test('compactItems keeps only the newest item of a collapse key', () => {
  const items = [
    { m: 'A', e: 100, k: 'order-42' },
    { m: 'B', e: 100 },
    { m: 'C', e: 100, k: 'order-42' },
    { m: 'D', e: 100, k: 'other' },
  ];
  assert.deepEqual(
    compactItems(items, 10).map((i) => i.m),
    ['B', 'C', 'D'],
  );
});

test('compactItems caps the deliveries of a user, dropping the oldest first', () => {
  const items = Array.from({ length: MAX_INBOX_ITEMS + 10 }, (_, i) => ({ m: String(i).padStart(8, '0'), e: 100 }));
  const out = compactItems(items, 10);
  assert.equal(out.length, MAX_INBOX_ITEMS);
  assert.equal(out[0]!.m, '00000010');
});

test("userStateOf splits a user's records into live deliveries and per-device receipts, and names the stale ones", () => {
  const records = [
    { _id: 'd1', r: { m: 'M1', e: 100, k: 'score' } },
    { _id: 'd2', r: { m: 'M2', e: 100, k: 'score', p: 'body', c: 3 } },
    { _id: 'd3', r: { m: 'M3', e: 5 } },
    { _id: 'a1', r: { m: 'M1', e: 100, v: 'phone' } },
    { _id: 'a2', r: { m: 'M2', e: 100, v: 'phone' } },
    { _id: 't1', r: { m: 'M2', e: 100, v: 'laptop', n: 1 } },
    { _id: 't2', r: { m: 'M2', e: 100, v: 'laptop', n: 2 } },
    { _id: 'b1', r: { m: 'B9', e: 100, v: 'phone' } }, // an ack of a broadcast: no delivery of this user
  ];
  const { state, stale } = userStateOf(records, 10, 100);
  assert.deepEqual(state.items, [{ m: 'M2', e: 100, k: 'score', p: 'body', c: 3 }]);
  assert.deepEqual([...state.receipts.get('phone')!.acked].sort(), ['B9', 'M1', 'M2']);
  assert.deepEqual(state.receipts.get('laptop')!.attempts.get('M2'), 2);
  // M1 (superseded by its collapse key) and M3 (expired) go, with M1's ack; the broadcast's ack stays.
  assert.deepEqual(stale.sort(), ['a1', 'd1', 'd3']);
  assert.equal(userStateOf(records, 10, 2).stale.length, 2, 'at most maxStale');
});
