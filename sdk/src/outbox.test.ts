import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Outbox } from './outbox.js';

test('frames are kept up to the limit and sent in order', () => {
  const outbox = new Outbox(2);
  assert.equal(outbox.push('a'), true);
  assert.equal(outbox.push('b'), true);
  assert.equal(outbox.push('c'), false);
  const sent: string[] = [];
  outbox.drain((f) => (sent.push(f), true));
  assert.deepEqual(sent, ['a', 'b']);
  outbox.drain((f) => (sent.push(f), true));
  assert.deepEqual(sent, ['a', 'b'], 'a drained outbox sends nothing again');
});

test('a refused frame stays queued with those after it', () => {
  const outbox = new Outbox(5);
  for (const f of ['a', 'b', 'c']) outbox.push(f);
  const sent: string[] = [];
  outbox.drain((f) => f !== 'b' && (sent.push(f), true));
  assert.deepEqual(sent, ['a']);
  outbox.drain((f) => (sent.push(f), true));
  assert.deepEqual(sent, ['a', 'b', 'c']);
});

test('clear drops everything queued', () => {
  const outbox = new Outbox(1);
  outbox.push('a');
  outbox.clear();
  assert.equal(outbox.push('b'), true, 'room again after clear');
  const sent: string[] = [];
  outbox.drain((f) => (sent.push(f), true));
  assert.deepEqual(sent, ['b']);
});
