import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord, encodeRecord } from '../../schemas/registry.js';
import { eventKey, toBusinessEvent } from './kafkaPublisher.js';
import { PublishError } from './publishError.js';

test('a message becomes a BusinessEvent that round-trips through the Avro schema', () => {
  const ev = toBusinessEvent({ app: 'shop', to: { users: ['u1', 'u2'] }, payload: { order: 42 }, collapseKey: 'order-42' }, 'key-1');
  assert.deepEqual(ev, {
    app: 'shop',
    to: { users: ['u1', 'u2'], group: null, all: false },
    payload: '{"order":42}',
    persistent: true,
    ttlSeconds: null,
    idempotencyKey: 'key-1',
    collapseKey: 'order-42',
    traceId: null,
  });
  const rec = encodeRecord('BusinessEvent', ev);
  assert.deepEqual(JSON.parse(JSON.stringify(decodeRecord('BusinessEvent', rec.value, rec.headers))), ev);
});

test('the key keeps one recipient in order: app|first user, app|group, or the app for broadcasts', () => {
  assert.equal(eventKey(toBusinessEvent({ app: 'a', to: { users: ['u1', 'u2'] }, payload: 1 }, 'k')), 'a|u1');
  assert.equal(eventKey(toBusinessEvent({ app: 'a', to: { group: 'news' }, payload: 1 }, 'k')), 'a|news');
  assert.equal(eventKey(toBusinessEvent({ app: 'a', to: { all: true }, payload: 1 }, 'k')), 'a');
});

test('events that could never be valid are refused before producing', () => {
  const bad = [
    { app: '', to: { users: ['u'] }, payload: 1 },
    { app: 'a', to: { users: [] }, payload: 1 },
    { app: 'a', to: { users: ['u'], all: true }, payload: 1 },
    { app: 'a', to: { users: ['u'] }, payload: undefined },
  ];
  for (const ev of bad) assert.throws(() => toBusinessEvent(ev as never, 'k'), (err: unknown) => err instanceof PublishError && err.code === 'INVALID_MESSAGE', JSON.stringify(ev));
});
