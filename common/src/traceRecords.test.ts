import { test } from 'node:test';
import assert from 'node:assert/strict';
import { traceIdFromHeaders } from './traceRecords.js';

test('trace id from traceparent, then X-Trace-Id; invalid values are ignored', () => {
  assert.equal(traceIdFromHeaders({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }), '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(traceIdFromHeaders({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-trace-id': 'other' }), '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(traceIdFromHeaders({ traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01', 'x-trace-id': 'req-7' }), 'req-7', 'an all-zero trace id is invalid');
  assert.equal(traceIdFromHeaders({ traceparent: 'garbage', 'x-trace-id': 'req-8' }), 'req-8');
  assert.equal(traceIdFromHeaders({ 'x-trace-id': 'has space' }), undefined);
  assert.equal(traceIdFromHeaders({ 'x-trace-id': 'x'.repeat(257) }), undefined);
  assert.equal(traceIdFromHeaders({}), undefined);
});
