import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeRecordV2, kafkajsRecordEncoder, recordEncoderPatched } from './kafkajsRecordEncoder.js';

test('records are encoded byte for byte as KafkaJS encodes them', () => {
  const original = kafkajsRecordEncoder();
  assert.ok(original, 'KafkaJS is the version the encoder was checked against');
  assert.equal(recordEncoderPatched(), true);
  const cases = [
    { key: 'app|user-1', value: Buffer.from([1, 2, 3]), headers: { 'push-schema': 'IngestRecord.v1', 'push-trace': '01JXA3K4Q9W2M8T6ZP0R5C7YBD' } },
    { key: null, value: null },
    { key: Buffer.from('k'), value: 'text välue', headers: { a: ['x', 'ÿ'], b: Buffer.from('bin') } },
    { key: 'ünï', value: Buffer.alloc(70_000, 7), timestampDelta: 12_345, offsetDelta: 9_999 },
    { key: 'neg', value: 'v', timestampDelta: -5, offsetDelta: 64 },
    { key: 'big', value: 'v', timestampDelta: 2 ** 29, offsetDelta: 300 },
    { value: 'no key, no headers' },
  ];
  for (const [i, c] of cases.entries()) {
    const ours = encodeRecordV2(c);
    assert.ok(ours, `case ${i} is handled`);
    assert.deepEqual(ours.buffer, original(c).buffer, `case ${i}`);
    assert.equal(ours.size(), ours.buffer.length);
  }
  for (let n = 0; n < 300; n++) {
    const c = {
      key: `k${n}`,
      value: Buffer.alloc(n * 37),
      headers: Object.fromEntries(Array.from({ length: n % 4 }, (_, j) => [`h${j}`, 'v'.repeat(n)])),
      offsetDelta: n * 131,
      timestampDelta: n * 1021,
    };
    assert.deepEqual(encodeRecordV2(c)!.buffer, original(c).buffer, `generated case ${n}`);
  }
});

test('a timestamp delta beyond 2^30 ms is left to KafkaJS', () => {
  assert.equal(encodeRecordV2({ key: 'k', value: 'v', timestampDelta: 2 ** 31 }), undefined);
});
