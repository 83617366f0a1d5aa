import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createLimiter, mapBounded } from './concurrency.js';

/** A call that resolves when the test says so, counting how many run at once. */
function gate() {
  let running = 0;
  let peak = 0;
  const open: (() => void)[] = [];
  const call = async <T>(value: T): Promise<T> => {
    running++;
    peak = Math.max(peak, running);
    await new Promise<void>((resolve) => open.push(resolve));
    running--;
    return value;
  };
  /** Lets every waiting call finish, until none is left. */
  const drain = async (done: Promise<unknown>) => {
    let finished = false;
    void done.finally(() => (finished = true));
    while (!finished) {
      open.splice(0).forEach((resolve) => resolve());
      await new Promise((r) => setImmediate(r));
    }
  };
  return { call, drain, peak: () => peak };
}

test('mapBounded keeps the order of results and never runs more than the limit', async () => {
  const g = gate();
  const items = Array.from({ length: 25 }, (_, i) => i);
  const done = mapBounded(items, 4, (n) => g.call(n * 2));
  await g.drain(done);
  assert.deepEqual(
    await done,
    items.map((n) => n * 2),
  );
  assert.equal(g.peak(), 4);
  assert.deepEqual(await mapBounded([], 4, async () => 1), []);
});

test('mapBounded rejects with the first failure and starts nothing after it', async () => {
  const started: number[] = [];
  await assert.rejects(
    mapBounded([0, 1, 2, 3, 4, 5], 2, async (n) => {
      started.push(n);
      if (n === 1) throw new Error('boom');
      return n;
    }),
    /boom/,
  );
  assert.ok(started.length < 6, `started ${started.join(',')}`);
});

test('createLimiter runs at most `limit` calls, in arrival order, and refuses past maxWaiting', async () => {
  const run = createLimiter(2, 3);
  const g = gate();
  const order: number[] = [];
  const calls = [0, 1, 2, 3, 4].map((n) => run(() => g.call(n).then((v) => (order.push(v), v))));
  await assert.rejects(
    run(() => g.call(9)),
    /3 calls already waiting/,
  );
  const all = Promise.all(calls);
  await g.drain(all);
  assert.deepEqual(await all, [0, 1, 2, 3, 4]);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.equal(g.peak(), 2);
});
