import { test } from 'node:test';
import assert from 'node:assert/strict';
import { routeRecords } from './routeRecords.js';
import type { IngestRecord } from '../../schemas/types.js';
import type { Route } from '../../common/src/routes.js';

const rec = (id: string, user: string, persistent = true, expiresAt = 2000): IngestRecord => ({
  id, app: 'a', target: 'USER', user, group: null, payload: '{}', persistent, createdAt: 0, expiresAt,
  collapseKey: null, traceId: id, taskId: null,
});
const route = (nodeId: string, device = 'd'): Route => ({ nodeId, device, connId: 'c', expiresAt: 5000 });

test('records go to every live node of the user, once per node, in order', () => {
  const routes: Record<string, Route[]> = {
    u1: [route('n1', 'phone'), route('n2', 'laptop'), route('n1', 'tablet')],
    u2: [route('n2')],
  };
  const r = routeRecords([rec('m1', 'u1'), rec('m2', 'u2'), rec('m3', 'u1')], (_a, u) => routes[u] ?? [], new Set(['n1', 'n2']), 1000);
  assert.deepEqual(r.byNode.get('n1')?.map((x) => x.id), ['m1', 'm3']);
  assert.deepEqual(r.byNode.get('n2')?.map((x) => x.id), ['m1', 'm2', 'm3']);
});

test('dead nodes are skipped; offline persistent waits, offline transient is dropped, expired is skipped', () => {
  const r = routeRecords(
    [rec('m1', 'u1'), rec('m2', 'u1', false), rec('m3', 'u9'), rec('m4', 'u1', true, 500)],
    () => [route('dead')],
    new Set(['n1']),
    1000,
  );
  assert.equal(r.byNode.size, 0);
  assert.equal(r.leftOffline, 2);
  assert.equal(r.droppedTransient, 1);
  assert.equal(r.expired, 1);
});
