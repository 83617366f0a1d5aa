import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord, encodeRecord } from '../../schemas/registry.js';
import { eventKey, toBusinessEvent } from './kafkaPublisher.js';
import { PublishError } from './publishError.js';
import { checkEventSignature, signEvent } from '../../protocol/eventSignature.js';

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
  for (const ev of bad)
    assert.throws(
      () => toBusinessEvent(ev as never, 'k'),
      (err: unknown) => err instanceof PublishError && err.code === 'INVALID_MESSAGE',
      JSON.stringify(ev),
    );
});

test('a signature covers schema id, key and value: any change to one of them fails the check', () => {
  const secret = 'x'.repeat(40);
  const rec = encodeRecord('BusinessEvent', toBusinessEvent({ app: 'a', to: { users: ['u'] }, payload: 1 }, 'k'));
  const signed = { schemaId: rec.headers['push-schema']!, key: 'a|u', value: rec.value };
  const header = signEvent(secret, signed);
  assert.match(header, /^v1=[0-9a-f]{64}$/);
  assert.deepEqual(checkEventSignature(header, ['other-secret-other-secret-other-secret', secret], signed), { ok: true });
  const tampered = Buffer.from(rec.value);
  tampered[tampered.length - 1] ^= 1;
  for (const changed of [
    { ...signed, key: 'a|v' },
    { ...signed, key: null },
    { ...signed, value: tampered },
    { ...signed, schemaId: 'BusinessEvent.v1' },
  ]) {
    assert.equal(checkEventSignature(header, [secret], changed).ok, false);
  }
  assert.equal(checkEventSignature(undefined, [secret], signed).ok, false);
  assert.deepEqual((checkEventSignature('v1=zz', [secret], signed) as { code: string }).code, 'SIGNATURE_INVALID');
});
