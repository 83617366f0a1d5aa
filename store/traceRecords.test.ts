import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseTraceField, traceField } from './traceRecords.js';

test('trace fields parse back to what was written', () => {
  assert.deepEqual(parseTraceField(traceField.count('offline'), '3'), { kind: 'count', outcome: 'offline', count: 3 });
  assert.deepEqual(parseTraceField(traceField.routed('#g:news'), JSON.stringify({ at: 5, outcome: 'forwarded', nodes: ['n1'] })), {
    kind: 'routed',
    recipient: '#g:news',
    at: 5,
    outcome: 'forwarded',
    nodes: ['n1'],
  });
  assert.deepEqual(parseTraceField(traceField.written('n1', 'ann', 'phone'), '{"at":7,"path":"resume"}'), {
    kind: 'written',
    node: 'n1',
    user: 'ann',
    device: 'phone',
    at: 7,
    path: 'resume',
  });
  assert.deepEqual(parseTraceField(traceField.acked('ann', 'phone'), '8'), { kind: 'acked', user: 'ann', device: 'phone', at: 8 });
  assert.deepEqual(parseTraceField(traceField.parked('ann', 'phone'), '9'), { kind: 'parked', user: 'ann', device: 'phone', at: 9 });
  assert.deepEqual(parseTraceField(traceField.dropped('n2', 'slow-persistent'), '10'), { kind: 'dropped', node: 'n2', reason: 'slow-persistent', at: 10 });
});

test('the meta, unknown fields and unreadable recipients are no entries; an unreadable write still names its socket', () => {
  assert.equal(parseTraceField(traceField.meta, '{}'), undefined);
  assert.equal(parseTraceField('z:1', '1'), undefined);
  assert.equal(parseTraceField(traceField.routed('ann'), 'not json'), undefined);
  assert.deepEqual(parseTraceField(traceField.written('n1', 'ann', 'phone'), 'not json'), {
    kind: 'written',
    node: 'n1',
    user: 'ann',
    device: 'phone',
    at: undefined,
    path: undefined,
  });
});
