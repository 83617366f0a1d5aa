import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeRecords } from './routeRecords.js';
import type { IngestRecord } from '../../schemas/types.js';
import { ingestRecord } from '../../test/support/ingestRecords.js';

const rec = (id: string, user: string | null, opts: Partial<IngestRecord> = {}) => ingestRecord(id, { user, expiresAt: 2000, ...opts });

test('records go to every node of their recipients, once per node, in order', () => {
  const nodes: Record<string, string[]> = { u1: ['n1', 'n2', 'n1'], u2: ['n2'] };
  const r = routeRecords([rec('m1', 'u1'), rec('m2', 'u2'), rec('m3', 'u1')], (x) => nodes[x.user!] ?? [], 1000);
  assert.deepEqual(
    r.byNode.get('n1')?.map((x) => x.id),
    ['m1', 'm3'],
  );
  assert.deepEqual(
    r.byNode.get('n2')?.map((x) => x.id),
    ['m1', 'm2', 'm3'],
  );
});

test('no nodes: offline persistent waits, transient is dropped; expired is skipped', () => {
  const r = routeRecords([rec('m1', 'u1'), rec('m2', 'u1', { persistent: false }), rec('m4', 'u1', { expiresAt: 500 })], () => [], 1000);
  assert.equal(r.byNode.size, 0);
  assert.equal(r.leftOffline, 1);
  assert.equal(r.droppedTransient, 1);
  assert.equal(r.expired, 1);
});

test('task records report their fan-out, even when it is empty', () => {
  const r = routeRecords(
    [rec('g1', null, { target: 'GROUP', group: 'news', taskId: 't1' }), rec('b1', null, { target: 'ALL', taskId: 't2' })],
    (x) => (x.target === 'GROUP' ? [] : ['n1', 'n2']),
    1000,
  );
  assert.deepEqual(r.fanout.get('t1'), []);
  assert.deepEqual(r.fanout.get('t2'), ['n1', 'n2']);
  assert.deepEqual(
    r.byNode.get('n2')?.map((x) => x.id),
    ['b1'],
  );
});
