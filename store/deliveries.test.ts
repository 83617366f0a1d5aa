import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compactItems, MAX_INBOX_ITEMS } from './deliveries.js';

test('compactItems orders by id, drops expired items and replayed duplicates', () => {
  const items = [
    { m: 'B', e: 100 },
    { m: 'A', e: 100 },
    { m: 'C', e: 5 },
    { m: 'B', e: 100 },
  ];
  assert.deepEqual(compactItems(items, 10).map((i) => i.m), ['A', 'B']);
});

test('compactItems keeps only the newest item of a collapse key', () => {
  const items = [
    { m: 'A', e: 100, k: 'order-42' },
    { m: 'B', e: 100 },
    { m: 'C', e: 100, k: 'order-42' },
    { m: 'D', e: 100, k: 'other' },
  ];
  assert.deepEqual(compactItems(items, 10).map((i) => i.m), ['B', 'C', 'D']);
});

test('compactItems caps the deliveries of a user, dropping the oldest first', () => {
  const items = Array.from({ length: MAX_INBOX_ITEMS + 10 }, (_, i) => ({ m: String(i).padStart(8, '0'), e: 100 }));
  const out = compactItems(items, 10);
  assert.equal(out.length, MAX_INBOX_ITEMS);
  assert.equal(out[0]!.m, '00000010');
});
