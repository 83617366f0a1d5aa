import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createNodeList } from './nodeList.js';

const A = 'ws://a/v1/ws';
const B = 'ws://b/v1/ws';
const C = 'ws://c/v1/ws';

/** The nodes tried by `n` consecutive failed attempts. */
const tries = (list: ReturnType<typeof createNodeList>, n: number) =>
  Array.from({ length: n }, () => {
    const url = list.current();
    list.failed();
    return url;
  });

test('without a success, nodes are tried in list order, wrapping around', () => {
  assert.deepEqual(tries(createNodeList([A, B, C]), 5), [A, B, C, A, B]);
});

test('after a drop, the node that worked comes first, then the rotation continues from it', () => {
  const list = createNodeList([A, B, C]);
  list.failed();
  list.succeeded(list.current());
  assert.equal(list.current(), B);
  list.dropped();
  assert.deepEqual(tries(list, 4), [B, C, A, B]);
  list.dropped();
  assert.equal(list.current(), B, 'still preferred: failures do not change the last good node');
  list.failed();
  list.succeeded(C);
  list.dropped();
  assert.equal(list.current(), C);
});

test('a new list from getToken keeps the preferred node when listed; a reconnect list does not', () => {
  const list = createNodeList([A, B]);
  list.succeeded(B);
  list.replace([C, B, A], { keepPreferred: true });
  assert.equal(list.current(), B);
  list.dropped();
  assert.equal(list.current(), B);
  list.replace([C, A], { keepPreferred: true });
  assert.equal(list.current(), C, 'the preferred node is gone: start at the head');
  list.succeeded(A);
  list.replace([B, A], { keepPreferred: false });
  assert.equal(list.current(), B);
  list.dropped();
  assert.equal(list.current(), B, 'preference dropped with the old list');
  list.replace([], { keepPreferred: false });
  assert.deepEqual(list.nodes, [B, A], 'an empty list is ignored');
});
