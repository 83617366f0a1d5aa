import { test } from 'node:test';
import assert from 'node:assert/strict';
import { countField, parseTraceEntry, traceEntry, type TraceFact } from './traceFacts.js';

test('every fact reads back as it was noted', () => {
  const facts: Exclude<TraceFact, { kind: 'counted' }>[] = [
    { kind: 'routed', recipient: '#g:team', at: 1, outcome: 'forwarded', nodes: ['n1', 'n2'] },
    { kind: 'routed', recipient: 'kim', at: 2, outcome: 'offline', nodes: [] },
    { kind: 'written', nodeId: 'n1', user: 'kim', device: 'phone', at: 3, path: 'resume' },
    { kind: 'acked', user: 'kim', device: 'phone', at: 4 },
    { kind: 'parked', user: 'kim', device: 'tab', at: 5 },
    { kind: 'dropped', nodeId: 'n2', reason: 'slow-persistent', at: 6 },
  ];
  for (const fact of facts) {
    const { field, value } = traceEntry(fact);
    assert.deepEqual(parseTraceEntry(field, value), fact);
  }
});

test('the stored layout stays what existing records hold', () => {
  assert.deepEqual(traceEntry({ kind: 'written', nodeId: 'n1', user: 'kim', device: 'phone', at: 3, path: 'live' }), {
    field: 'w:n1|kim|phone',
    value: '{"at":3,"path":"live"}',
  });
  assert.deepEqual(traceEntry({ kind: 'acked', user: 'kim', device: 'phone', at: 4 }), { field: 'a:kim|phone', value: '4' });
  assert.equal(countField('expired'), 'n:expired');
  assert.deepEqual(parseTraceEntry('n:expired', '3'), { kind: 'counted', outcome: 'expired', n: 3 });
});

test('meta, unknown kinds and unreadable values are not facts', () => {
  assert.equal(parseTraceEntry('meta', '{}'), undefined);
  assert.equal(parseTraceEntry('z:x', '1'), undefined);
  assert.equal(parseTraceEntry('r:kim', 'not json'), undefined);
});
