import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRecentIds } from './dedupe.js';

test('a repeated id is reported as a duplicate', () => {
  const ids = createRecentIds(10);
  assert.equal(ids.add('a'), true);
  assert.equal(ids.add('b'), true);
  assert.equal(ids.add('a'), false);
});

test('memory is bounded: the oldest id is evicted first', () => {
  const ids = createRecentIds(3);
  for (const id of ['a', 'b', 'c', 'd']) ids.add(id);
  assert.equal(ids.size, 3);
  assert.equal(ids.has('a'), false, 'a was the oldest');
  assert.deepEqual(
    ['b', 'c', 'd'].map((id) => ids.has(id)),
    [true, true, true],
  );
  assert.equal(ids.add('a'), true, 'an evicted id counts as new again');
  assert.equal(ids.has('b'), false);
  for (let i = 0; i < 10_000; i++) ids.add(`x${i}`);
  assert.equal(ids.size, 3);
});

test('acked state is kept per id; a forgotten id is new again', () => {
  const ids = createRecentIds(5);
  ids.add('m1');
  assert.equal(ids.isAcked('m1'), false);
  ids.markAcked('m1');
  assert.equal(ids.isAcked('m1'), true);
  ids.markAcked('never-seen');
  assert.equal(ids.has('never-seen'), false, 'marking does not record unknown ids');
  ids.forget('m1');
  assert.equal(ids.add('m1'), true);
  assert.equal(ids.isAcked('m1'), false);
});
