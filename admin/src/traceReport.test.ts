import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Redis } from 'ioredis';
import { countField, traceEntry, type TraceFact } from '../../store/traceFacts.js';
import type { StoredMessage } from '../../store/messages.js';
import { traceMessage, type TraceDeps } from './traceReport.js';

const NOW = 1_700_000_000_000;
const MSG: StoredMessage = {
  _id: 'M1',
  app: 'a',
  target: 'USER',
  users: ['ann'],
  payload: '{}',
  persistent: true,
  createdAt: new Date(NOW - 3000),
  expiresAt: new Date(NOW + 60_000),
  traceId: 't1',
};
const META = JSON.stringify({ app: 'a', target: 'USER', persistent: true, createdAt: NOW - 3000, expiresAt: NOW + 60_000, traceId: 't1' });

/** A trace hash holding these facts, as the services write them. */
const fieldsOf = (...facts: Exclude<TraceFact, { kind: 'counted' }>[]) =>
  Object.fromEntries(facts.map((f) => traceEntry(f)).map(({ field, value }) => [field, value]));

function deps(opts: { msg?: StoredMessage | null; inOutbox?: boolean; fields?: Record<string, string>; acked?: boolean }): TraceDeps {
  return {
    messages: { get: async () => opts.msg ?? null, inOutbox: async () => opts.inOutbox ?? false },
    redis: { hgetall: async () => ({ ...opts.fields }) } as unknown as Redis,
    store: {
      traceState: async (_app, _id, users, devices) => ({
        inDeliveries: users.map(() => true),
        devices: devices.map(() => ({ acked: opts.acked ?? false, tries: 1 })),
      }),
    },
  };
}

test('an unknown id has no trace', async () => {
  assert.equal(await traceMessage(deps({}), 'M1', NOW), undefined);
});

test('a stored message with an outbox entry and no dispatcher record is in the outbox', async () => {
  const r = (await traceMessage(deps({ msg: MSG, inOutbox: true }), 'M1', NOW))!;
  assert.equal(r.state, 'outbox');
  assert.deepEqual(
    r.hops.map((h) => h.hop),
    ['stored', 'outbox'],
  );
  assert.equal(r.traced, false);
});

test('a message the dispatcher traced is not reported in the outbox while its outbox entry is cleared', async () => {
  const fields = {
    meta: META,
    ...fieldsOf(
      { kind: 'routed', recipient: 'ann', at: NOW - 2000, outcome: 'forwarded', nodes: ['n1'] },
      { kind: 'written', nodeId: 'n1', user: 'ann', device: 'phone', at: NOW - 1900, path: 'live' },
      { kind: 'acked', user: 'ann', device: 'phone', at: NOW - 1800 },
    ),
    [countField('forwarded')]: '1',
  };
  const r = (await traceMessage(deps({ msg: MSG, inOutbox: true, fields }), 'M1', NOW))!;
  assert.equal(r.state, 'acked');
  assert.deepEqual(
    r.hops.map((h) => h.hop),
    ['stored', 'ingested', 'dispatched', 'written', 'acked'],
  );
  assert.deepEqual(r.counts, { forwarded: 1 });
  assert.deepEqual(r.recipients, [
    {
      user: 'ann',
      outcome: 'forwarded',
      nodes: ['n1'],
      inInbox: true,
      devices: [{ device: 'phone', writtenBy: ['n1'], acked: true, parked: false, tries: 1 }],
    },
  ]);
});

test('an offline recipient waits; past its TTL the message is expired', async () => {
  const fields = { meta: META, ...fieldsOf({ kind: 'routed', recipient: 'ann', at: NOW - 2000, outcome: 'offline', nodes: [] }) };
  assert.equal((await traceMessage(deps({ msg: MSG, fields }), 'M1', NOW))!.state, 'waiting-offline');
  const late = (await traceMessage(deps({ msg: MSG, fields }), 'M1', NOW + 120_000))!;
  assert.equal(late.state, 'expired');
  assert.equal(late.hops.at(-1)!.hop, 'expired');
  assert.match(late.hops.at(-1)!.detail, /while undelivered to ann/);
});
