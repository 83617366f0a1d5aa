import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredMessage } from './messages.js';
import { createWriteBatcher, type WriteBatcherOptions } from './writeBatcher.js';
import { batchMessages } from './messages.js';

const msg = (id: string, payload = '"x"'): StoredMessage => ({
  _id: id,
  app: 'a',
  target: 'USER',
  users: ['u'],
  payload,
  persistent: true,
  createdAt: new Date(),
  expiresAt: new Date(Date.now() + 60_000),
  traceId: id,
});

function fakeStore(fail?: (batch: StoredMessage[]) => Error | undefined) {
  const calls: string[][] = [];
  const store = async (batch: StoredMessage[]) => {
    calls.push(batch.map((m) => m._id));
    await new Promise((r) => setTimeout(r, 5));
    const err = fail?.(batch);
    if (err) throw err;
  };
  return { store, calls };
}

const createMessagesBatcher = (store: (batch: StoredMessage[]) => Promise<void>, opts: WriteBatcherOptions = {}) => {
  const b = batchMessages({ storeMessages: store }, opts);
  return { store: (m: StoredMessage) => b.add(m), close: () => b.close() };
};

test("each caller gets its own item's result", async () => {
  const b = createWriteBatcher(
    async (items: number[]) => items.map((n) => n * 2),
    () => 1,
  );
  assert.deepEqual(await Promise.all([1, 2, 3].map((n) => b.add(n))), [2, 4, 6]);
  await b.close();
});

test('concurrent submissions of one tick are stored in one call', async () => {
  const { store, calls } = fakeStore();
  const b = createMessagesBatcher(store);
  await Promise.all(Array.from({ length: 50 }, (_, i) => b.store(msg(`m${i}`))));
  assert.equal(calls.length, 1);
  assert.equal(calls[0]!.length, 50);
  await b.close();
});

test('batches are bounded by count and bytes', async () => {
  const { store, calls } = fakeStore();
  const b = createMessagesBatcher(store, { maxBatch: 10, maxBatchBytes: 4096, concurrency: 2 });
  await Promise.all(Array.from({ length: 25 }, (_, i) => b.store(msg(`m${i}`))));
  assert.ok(calls.every((c) => c.length <= 10));
  assert.equal(calls.flat().length, 25);
  const big = createMessagesBatcher(store, { maxBatchBytes: 4096 });
  calls.length = 0;
  await Promise.all(Array.from({ length: 4 }, (_, i) => big.store(msg(`b${i}`, 'y'.repeat(3000)))));
  assert.ok(
    calls.every((c) => c.length === 1),
    `one 3 KB message per 4 KB batch: ${JSON.stringify(calls)}`,
  );
  await b.close();
  await big.close();
});

test('a failed store call fails every submission of its batch, and only those', async () => {
  const { store } = fakeStore((batch) => (batch.some((m) => m._id === 'bad') ? new Error('store down') : undefined));
  const b = createMessagesBatcher(store, { maxBatch: 2 });
  const results = await Promise.allSettled(['ok1', 'bad', 'ok2', 'ok3'].map((id) => b.store(msg(id))));
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected', 'fulfilled', 'fulfilled'],
  );
  await b.close();
});

test('past maxQueued, submissions are refused at once with 503', async () => {
  const { store } = fakeStore();
  const b = createMessagesBatcher(store, { maxQueued: 3 });
  const first = Array.from({ length: 3 }, (_, i) => b.store(msg(`m${i}`)));
  await assert.rejects(b.store(msg('over')), (err: { code?: string; status?: number }) => err.code === 'OVERLOADED' && err.status === 503);
  await Promise.all(first);
  await b.close();
  await assert.rejects(b.store(msg('late')), (err: { code?: string }) => err.code === 'SHUTTING_DOWN');
});
