import { afterEach, beforeEach, test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { createAckBatcher } from './ackBatcher.js';

beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
afterEach(() => mock.timers.reset());

const recorder = (connected = true) => {
  const frames: string[][] = [];
  const link = { connected };
  return { frames, link, send: (ids: string[]) => (link.connected ? (frames.push(ids), true) : false) };
};

test('a full batch is sent at once', () => {
  const r = recorder();
  const b = createAckBatcher({ batchMs: 100, batchMax: 3, send: r.send });
  b.add('a');
  b.add('b');
  assert.deepEqual(r.frames, []);
  b.add('c');
  assert.deepEqual(r.frames, [['a', 'b', 'c']]);
  assert.equal(b.pending, 0);
});

test('a partial batch is sent batchMs after its first id', () => {
  const r = recorder();
  const b = createAckBatcher({ batchMs: 100, batchMax: 100, send: r.send });
  b.add('a');
  mock.timers.tick(60);
  b.add('b');
  mock.timers.tick(39);
  assert.deepEqual(r.frames, [], 'not yet');
  mock.timers.tick(1);
  assert.deepEqual(r.frames, [['a', 'b']], 'the timer started with the first id, not the last');
  b.add('c');
  mock.timers.tick(100);
  assert.deepEqual(r.frames, [['a', 'b'], ['c']]);
});

test('the same id twice before a flush is sent once', () => {
  const r = recorder();
  const b = createAckBatcher({ batchMs: 100, batchMax: 100, send: r.send });
  b.add('a');
  b.add('a');
  mock.timers.tick(100);
  assert.deepEqual(r.frames, [['a']]);
});

test('while disconnected ids are kept, then flushed in frames of at most batchMax', () => {
  const r = recorder(false);
  const b = createAckBatcher({ batchMs: 100, batchMax: 2, send: r.send });
  for (const id of ['a', 'b', 'c', 'd', 'e']) b.add(id);
  mock.timers.tick(1000);
  assert.deepEqual(r.frames, []);
  assert.equal(b.pending, 5);
  r.link.connected = true;
  b.flush();
  assert.deepEqual(r.frames, [['a', 'b'], ['c', 'd'], ['e']]);
  assert.equal(b.pending, 0);
});

test('clear drops the queue and the timer', () => {
  const r = recorder();
  const b = createAckBatcher({ batchMs: 100, batchMax: 100, send: r.send });
  b.add('a');
  b.clear();
  mock.timers.tick(500);
  assert.deepEqual(r.frames, []);
});
