import { test } from 'node:test';
import assert from 'node:assert/strict';
import avro from 'avsc';
import { decodeRecord, encodeRecord, RecordDecodeError } from './registry.js';
import { checkAvroBounds } from './checkAvroBounds.js';

/** Avro's zig-zag varint of a (safe) integer. */
function varint(n: number): Buffer {
  let z = n >= 0 ? n * 2 : -n * 2 - 1;
  const out: number[] = [];
  do {
    let b = z % 128;
    z = Math.floor(z / 128);
    if (z > 0) b |= 0x80;
    out.push(b);
  } while (z > 0);
  return Buffer.from(out);
}

test('a BusinessEvent whose users array claims 2^31 items is UNDECODABLE at once, not a heap exhausted', () => {
  // app "a", then the users array's first block: 2^31 items, with 3 bytes left.
  const value = Buffer.concat([varint(1), Buffer.from('a'), varint(2 ** 31), Buffer.from([2, 0x61, 0])]);
  const started = Date.now();
  assert.throws(
    () => decodeRecord('BusinessEvent', value, { 'push-schema': 'BusinessEvent.v2' }),
    (err) => err instanceof RecordDecodeError && err.code === 'UNDECODABLE' && /array block of 2147483648 items/.test(err.message),
  );
  assert.ok(Date.now() - started < 100);
});

test('lengths and counts past the end, bad union and enum indexes, and 11-byte numbers are refused', () => {
  const type = avro.Type.forSchema({
    type: 'record',
    name: 'T',
    fields: [
      { name: 's', type: 'string' },
      { name: 'm', type: { type: 'map', values: 'long' } },
      { name: 'u', type: ['null', 'string'] },
      { name: 'e', type: { type: 'enum', name: 'E', symbols: ['A', 'B'] } },
      { name: 'n', type: { type: 'array', items: 'null' } },
    ],
  });
  const good = type.toBuffer({ s: 'x', m: { k: 1 }, u: 'y', e: 'B', n: [null, null] });
  checkAvroBounds(type, good);
  const bad = [
    Buffer.concat([varint(1000), Buffer.from('x')]), // string of 1000 bytes, 1 there
    Buffer.concat([varint(1), Buffer.from('x'), varint(1e6), Buffer.from([0])]), // map of a million entries
    Buffer.concat([varint(1), Buffer.from('x'), varint(0), varint(7)]), // union index 7
    Buffer.concat([varint(1), Buffer.from('x'), varint(0), varint(0), varint(5)]), // enum index 5
    Buffer.concat([varint(1), Buffer.from('x'), varint(0), varint(0), varint(1), varint(1e9)]), // a billion nulls
    Buffer.concat([varint(1), Buffer.from('x'), Buffer.alloc(11, 0xff)]), // a number of 11 bytes
    good.subarray(0, good.length - 2), // truncated
  ];
  for (const [i, buf] of bad.entries()) assert.throws(() => checkAvroBounds(type, buf), /bytes|range|number|values|items|truncated/, `case ${i}`);
});

test('records of every kind encoded by the platform pass the check unchanged', () => {
  const ack = encodeRecord('Ack', { app: 'a', user: 'u', device: 'd', ids: ['m1', 'm2'], nodeId: 'n', at: 1_700_000_000_000 });
  assert.deepEqual(decodeRecord('Ack', ack.value, ack.headers).ids, ['m1', 'm2']);
  const ev = encodeRecord('BusinessEvent', {
    app: 'a',
    to: { users: Array.from({ length: 10_000 }, (_, i) => `u${i}`), group: null, all: false },
    payload: '{"deep":[[[[1]]]]}',
    persistent: true,
    ttlSeconds: 60,
    idempotencyKey: 'k',
    collapseKey: null,
    traceId: null,
  });
  assert.equal(decodeRecord('BusinessEvent', ev.value, ev.headers).to.users.length, 10_000);
});
