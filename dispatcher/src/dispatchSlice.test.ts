import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KafkaMessage, Message } from 'kafkajs';
import { decodeRecord, encodeRecord, SCHEMA_HEADER } from '../../schemas/registry.js';
import type { IngestRecord } from '../../schemas/types.js';
import type { Route } from '../../store/routeTable.js';
import type { Delivery } from '../../store/deliveries.js';
import { dispatchSlice, type DispatchOutcome, type DispatchSliceDeps } from './dispatchSlice.js';

const rec = (id: string, user: string | null, opts: Partial<IngestRecord> = {}): IngestRecord => ({
  id,
  app: 'a',
  target: 'USER',
  user,
  group: null,
  payload: '{}',
  persistent: true,
  createdAt: 0,
  expiresAt: 2000,
  collapseKey: null,
  traceId: `t-${id}`,
  taskId: null,
  ...opts,
});

const message = (r: IngestRecord, offset: number): KafkaMessage => {
  const { value, headers } = encodeRecord('IngestRecord', r);
  return { key: null, value, headers, offset: String(offset), timestamp: '0', attributes: 0 };
};

const route = (nodeId: string): Route => ({ device: 'd', connId: `c-${nodeId}`, nodeId, expiresAt: 10_000 });

/** Fakes of Redis, the store and Kafka, recording what the slice did to them. */
function fakes({ routes = {} as Record<string, string[]>, groups = {} as Record<string, string[]>, live = [] as string[], failPublish = false } = {}) {
  const seen = {
    stored: [] as Delivery[],
    published: new Map<string, Message[]>(),
    deadLettered: [] as string[],
    fanout: new Map<string, string[]>(),
    forwarded: [] as string[],
    counts: new Map<DispatchOutcome, number>(),
    traced: 0,
    order: [] as string[],
  };
  const deps: DispatchSliceDeps = {
    guard: { seenBefore: async () => new Set(), notAgain: async () => new Set(), blockedNodes: async () => new Map() },
    appendDeliveries: async (d) => {
      seen.order.push('store');
      seen.stored.push(...d);
    },
    lookupRoutes: async (users) => users.map((u) => (routes[u.user] ?? []).map(route)),
    groupNodes: async (_app, group) => groups[group] ?? [],
    liveNodes: async () => new Set(live),
    recordFanout: async (taskId, nodes) => void seen.fanout.set(taskId, nodes),
    recordTaskBoots: async () => undefined,
    publish: async (topic, messages) => {
      if (failPublish) throw new Error('broker down');
      seen.order.push(`publish ${topic}`);
      seen.published.set(topic, [...(seen.published.get(topic) ?? []), ...messages]);
    },
    nodeTopic: (nodeId) => `push.node.${nodeId}`,
    deadLetter: async (m, err) => void seen.deadLettered.push(`${m.offset}:${err.code}`),
    trace: () => void seen.traced++,
    forwarded: (offset) => {
      seen.order.push('forwarded');
      seen.forwarded.push(offset);
    },
    count: (outcome, n) => seen.counts.set(outcome, (seen.counts.get(outcome) ?? 0) + n),
    now: () => 1000,
  };
  return { deps, seen };
}

const idsOn = (messages: Message[] | undefined) =>
  (messages ?? []).map((m) => decodeRecord('NodeDelivery', m.value as Buffer, { [SCHEMA_HEADER]: m.headers![SCHEMA_HEADER] as string }).id);

test('stores persistent deliveries, forwards to live route nodes with the recipient as key, then reports the offset', async () => {
  const { deps, seen } = fakes({ routes: { u1: ['n1', 'n2'], u2: ['gone'] }, live: ['n1', 'n2'] });
  await dispatchSlice(deps, 'push.ingest', 0, [message(rec('m1', 'u1'), 5), message(rec('m2', 'u2', { persistent: false }), 6)]);
  assert.deepEqual(
    seen.stored.map((d) => [d.user, d.m]),
    [['u1', 'm1']],
  );
  assert.deepEqual(idsOn(seen.published.get('push.node.n1')), ['m1']);
  assert.deepEqual(idsOn(seen.published.get('push.node.n2')), ['m1']);
  assert.equal(seen.published.get('push.node.n1')![0]!.key, 'a|u1');
  assert.equal(seen.published.has('push.node.gone'), false, 'a route to a node that is not live is not used');
  assert.deepEqual(seen.forwarded, ['6']);
  assert.equal(seen.order[0], 'store');
  assert.equal(seen.order.at(-1), 'forwarded');
  assert.deepEqual(Object.fromEntries(seen.counts), { forwarded: 2, offline: 0, 'dropped-transient': 1, expired: 0 });
  assert.equal(seen.traced, 1);
});

test('an undecodable record is dead-lettered; the rest of the slice is routed and its last offset reported', async () => {
  const { deps, seen } = fakes({ routes: { u1: ['n1'] }, live: ['n1'] });
  const bad: KafkaMessage = { key: null, value: Buffer.from('not avro'), headers: {}, offset: '7', timestamp: '0', attributes: 0 };
  await dispatchSlice(deps, 'push.ingest', 0, [message(rec('m1', 'u1'), 6), bad]);
  assert.deepEqual(seen.deadLettered, ['7:SCHEMA_HEADER_MISSING']);
  assert.deepEqual(idsOn(seen.published.get('push.node.n1')), ['m1']);
  assert.deepEqual(seen.forwarded, ['7']);
  assert.equal(seen.counts.get('dead-lettered'), 1);
});

test('groups go to their nodes, broadcasts to every live node, and a task learns its fan-out', async () => {
  const { deps, seen } = fakes({ groups: { g: ['n2'] }, live: ['n1', 'n2'] });
  await dispatchSlice(deps, 'push.ingest', 1, [
    message(rec('m1', null, { target: 'GROUP', group: 'g' }), 1),
    message(rec('m2', null, { target: 'ALL', taskId: 'task-1' }), 2),
  ]);
  assert.deepEqual(idsOn(seen.published.get('push.node.n1')), ['m2']);
  assert.deepEqual(idsOn(seen.published.get('push.node.n2')), ['m1', 'm2']);
  assert.deepEqual(
    seen.published.get('push.node.n2')!.map((m) => m.key),
    ['a|#g:g', 'a|#all'],
  );
  assert.deepEqual([...seen.fanout], [['task-1', ['n1', 'n2']]]);
  assert.deepEqual(
    seen.stored.map((d) => d.m),
    ['m2'],
    'a persistent broadcast is stored once; a group message is live only',
  );
});

test('a replayed record is not forwarded again, nor to the nodes that already have it', async () => {
  const { deps, seen } = fakes({ routes: { u1: ['n1', 'n2'], u2: ['n1'] }, live: ['n1', 'n2'] });
  deps.guard = {
    seenBefore: async (_t, _p, _m, records) => new Set(records.values()),
    notAgain: async (s) => new Set([...s].filter((r) => r.id === 'm2')),
    blockedNodes: async (s) => new Map([...s].filter((r) => r.id === 'm1').map((r) => [r, new Set(['n1'])])),
  };
  await dispatchSlice(deps, 'push.ingest', 0, [message(rec('m1', 'u1'), 1), message(rec('m2', 'u2'), 2)]);
  assert.equal(seen.published.has('push.node.n1'), false);
  assert.deepEqual(idsOn(seen.published.get('push.node.n2')), ['m1']);
  assert.deepEqual(seen.forwarded, ['2']);
});

test('a failed forward reports nothing forwarded, so the slice is handled again', async () => {
  const { deps, seen } = fakes({ routes: { u1: ['n1'] }, live: ['n1'], failPublish: true });
  await assert.rejects(dispatchSlice(deps, 'push.ingest', 0, [message(rec('m1', 'u1'), 3)]), /broker down/);
  assert.deepEqual(seen.forwarded, []);
  assert.equal(seen.counts.get('forwarded'), undefined);
});
