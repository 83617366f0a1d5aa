import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeRecord, encodeRecord, encodeRecordsVarying, sameEncoding, SCHEMA_HEADER } from './registry.js';
import type { IngestRecord } from './types.js';

const base: Omit<IngestRecord, 'user'> = {
  id: '01JXA3K4Q9W2M8T6ZP0R5C7YBD',
  app: 'demo',
  target: 'USER',
  group: null,
  payload: '{"text":"héllo"}',
  persistent: true,
  createdAt: 1_700_000_000_000,
  expiresAt: 1_700_086_400_000,
  collapseKey: 'order-42',
  traceId: 't-1',
  taskId: null,
};

test('encodeRecordsVarying writes the same bytes as encodeRecord for each value', () => {
  const users = ['u1', 'ünïcode', '', 'x'.repeat(300), null];
  const many = encodeRecordsVarying('IngestRecord', base, 'user', users);
  assert.equal(many.length, users.length);
  users.forEach((user, i) => assert.deepEqual(many[i], encodeRecord('IngestRecord', { ...base, user }).value, `user ${String(user)}`));
  assert.equal(decodeRecord('IngestRecord', many[1]!, { [SCHEMA_HEADER]: 'IngestRecord.v1' }).user, 'ünïcode');
  // Varying a field in the middle of the record, and one at its end.
  const payloads = encodeRecordsVarying('IngestRecord', { ...base, user: 'u' }, 'payload', ['1', '"two"']);
  assert.deepEqual(payloads[1], encodeRecord('IngestRecord', { ...base, user: 'u', payload: '"two"' }).value);
  const tasks = encodeRecordsVarying('IngestRecord', { ...base, user: 'u' }, 'taskId', ['t1', null]);
  assert.deepEqual(tasks[0], encodeRecord('IngestRecord', { ...base, user: 'u', taskId: 't1' }).value);
});

test('encodeRecordsVarying refuses a field the schema does not have and a value that does not fit', () => {
  assert.throws(() => encodeRecordsVarying('IngestRecord', base, 'nope' as 'user', ['u']), /has no field nope/);
  assert.throws(() => encodeRecordsVarying('IngestRecord', base, 'user', [42 as unknown as string]));
});

test('sameEncoding: an IngestRecord.v1 is byte for byte a NodeDelivery; other kinds are not', () => {
  assert.equal(sameEncoding('IngestRecord.v1', 'NodeDelivery'), true);
  const bytes = encodeRecord('IngestRecord', { ...base, user: 'u1' }).value;
  assert.deepEqual({ ...decodeRecord('NodeDelivery', bytes, { [SCHEMA_HEADER]: 'NodeDelivery.v1' }) }, { ...base, user: 'u1' });
  assert.equal(sameEncoding('BusinessEvent.v1', 'NodeDelivery'), false);
  assert.equal(sameEncoding('Ack.v1', 'Upstream'), false);
  assert.equal(sameEncoding('NoSuch.v1', 'NodeDelivery'), false);
});
