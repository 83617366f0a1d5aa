import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import avro from 'avsc';
import { AVRO_DIR, decodeRecord, encodeRecord, latestSchemaId, RecordDecodeError, schemaVersions, SCHEMA_HEADER } from './registry.js';
import { generateTypes } from './generateTypes.js';

test('a BusinessEvent written with v1 is read by the current reader with defaults filled in', () => {
  const v1 = avro.Type.forSchema(JSON.parse(readFileSync(path.join(AVRO_DIR, 'BusinessEvent.v1.avsc'), 'utf8')));
  const written = v1.toBuffer({
    app: 'demo',
    to: { users: ['u1'], group: null, all: false },
    payload: '{"a":1}',
    persistent: true,
    ttlSeconds: 60,
    idempotencyKey: null,
  });
  const read = decodeRecord('BusinessEvent', written, { [SCHEMA_HEADER]: Buffer.from('BusinessEvent.v1') });
  assert.equal(latestSchemaId('BusinessEvent'), 'BusinessEvent.v2');
  assert.deepEqual(read.to.users, ['u1']);
  assert.equal(read.collapseKey, null);
  assert.equal(read.traceId, null);
  assert.equal(read.ttlSeconds, 60);
});

test('encodeRecord round-trips through decodeRecord and tags the newest schema id', () => {
  const rec = {
    app: 'a',
    user: 'u',
    device: 'd',
    ids: ['m1', 'm2'],
    nodeId: 'n1',
    at: 1_700_000_000_000,
  };
  const enc = encodeRecord('Ack', rec);
  assert.equal(enc.headers[SCHEMA_HEADER], 'Ack.v1');
  assert.deepEqual({ ...decodeRecord('Ack', enc.value, enc.headers) }, rec);
});

test('decodeRecord names what is wrong with a bad record', () => {
  const good = encodeRecord('Ack', { app: 'a', user: 'u', device: 'd', ids: [], nodeId: 'n', at: 1 });
  const code = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      assert.ok(err instanceof RecordDecodeError);
      return err.code;
    }
    return 'no error';
  };
  assert.equal(
    code(() => decodeRecord('Ack', good.value, {})),
    'SCHEMA_HEADER_MISSING',
  );
  assert.equal(
    code(() => decodeRecord('Ack', good.value, { [SCHEMA_HEADER]: 'Ack.v99' })),
    'SCHEMA_UNKNOWN',
  );
  assert.equal(
    code(() => decodeRecord('Upstream', good.value, good.headers)),
    'SCHEMA_KIND_MISMATCH',
  );
  assert.equal(
    code(() => decodeRecord('Ack', Buffer.from([0xff, 0xff, 0xff]), good.headers)),
    'UNDECODABLE',
  );
  assert.throws(() => encodeRecord('Ack', { app: 'a' } as never));
});

test('every later schema version can read every earlier one (backward compatible)', () => {
  const byKind = new Map<string, ReturnType<typeof schemaVersions>>();
  for (const v of schemaVersions()) byKind.set(v.kind, [...(byKind.get(v.kind) ?? []), v]);
  for (const [kind, list] of byKind) {
    const sorted = list.sort((a, b) => a.version - b.version);
    const newest = avro.Type.forSchema(sorted.at(-1)!.schema);
    for (const older of sorted) {
      assert.doesNotThrow(() => newest.createResolver(avro.Type.forSchema(older.schema)), `${kind} v${older.version}`);
    }
  }
});

test('schemas/types.ts is generated from the current .avsc files', () => {
  const committed = readFileSync(path.join(AVRO_DIR, '..', 'types.ts'), 'utf8');
  assert.equal(committed, generateTypes(), 'run `npm run schemas:types` and commit the result');
});
