import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createDispatchTracer } from './traceDispatch.js';
import type { TraceWriter } from '../../store/traceRecords.js';
import { traceEntry } from '../../store/traceFacts.js';
import type { IngestRecord } from '../../schemas/types.js';

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

function fakeWriter() {
  const ops: { op: string; id: string; field: string; value: string | number }[] = [];
  const writer: TraceWriter = {
    note: (id, fact, opts) => {
      const { field, value } = traceEntry(fact);
      ops.push({ op: opts?.ifAbsent ? 'setnx' : 'set', id, field, value });
    },
    set: (id, field, value) => void ops.push({ op: 'set', id, field, value }),
    setIfAbsent: (id, field, value) => void ops.push({ op: 'setnx', id, field, value }),
    incr: (id, field, by) => void ops.push({ op: 'incr', id, field, value: by }),
    flush: async () => undefined,
    close: async () => undefined,
  };
  return { ops, writer };
}

test('each record is traced with its outcome and nodes; only routings replace an earlier fact', () => {
  const { ops, writer } = fakeWriter();
  const trace = createDispatchTracer({ trace: writer, logger: pino({ level: 'silent' }) });
  const m1 = rec('m1', 'u1');
  const m2 = rec('m2', 'u2');
  const m3 = rec('m3', 'u3', { persistent: false });
  const m4 = rec('m4', 'u4', { expiresAt: 500 });
  trace(
    [m1, m2, m3, m4],
    new Map([
      ['n1', [m1]],
      ['n2', [m1]],
    ]),
    1000,
  );
  const r = (id: string) => ops.find((o) => o.id === id && o.field.startsWith('r:'))!;
  assert.deepEqual([r('m1').op, r('m1').field, JSON.parse(String(r('m1').value))], ['set', 'r:u1', { at: 1000, outcome: 'forwarded', nodes: ['n1', 'n2'] }]);
  assert.deepEqual([r('m2').op, JSON.parse(String(r('m2').value)).outcome], ['setnx', 'offline']);
  assert.equal(JSON.parse(String(r('m3').value)).outcome, 'dropped-transient');
  assert.equal(JSON.parse(String(r('m4').value)).outcome, 'expired');
  const meta = JSON.parse(String(ops.find((o) => o.id === 'm1' && o.field === 'meta')!.value));
  assert.deepEqual(meta, { app: 'a', target: 'USER', group: null, persistent: true, createdAt: 0, expiresAt: 2000, traceId: 't-m1', taskId: null });
  assert.deepEqual(
    ops.filter((o) => o.op === 'incr').map((o) => `${o.id} ${o.field}`),
    ['m1 n:forwarded', 'm2 n:offline', 'm3 n:dropped-transient', 'm4 n:expired'],
  );
});

test('a long user list names at most 50 recipients per message, and counts all of them', () => {
  const { ops, writer } = fakeWriter();
  const trace = createDispatchTracer({ trace: writer, logger: pino({ level: 'silent' }) });
  const records = Array.from({ length: 120 }, (_, i) => rec('big', `u${i}`));
  trace(records, new Map(), 1000);
  assert.equal(ops.filter((o) => o.field.startsWith('r:')).length, 50);
  assert.equal(ops.filter((o) => o.field === 'meta').length, 1);
  assert.equal(
    ops.filter((o) => o.field === 'n:offline').reduce((n, o) => n + Number(o.value), 0),
    120,
  );
});
