import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Partitioners, type PartitionerArgs } from 'kafkajs';
import { createMemoPartitioner } from './kafka.js';

const meta = (n: number, down: number[] = []) =>
  Array.from({ length: n }, (_, i) => ({ partitionId: i, leader: down.includes(i) ? -1 : 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));

test("the memoised partitioner picks the partition Kafka's murmur2 partitioner picks, for every key and partition count", () => {
  const memo = createMemoPartitioner({ maxKeys: 50 })();
  const plain = Partitioners.DefaultPartitioner();
  for (const n of [1, 4, 7, 8]) {
    for (let i = 0; i < 200; i++) {
      const args: PartitionerArgs = { topic: 't', partitionMetadata: meta(n), message: { key: `app|user-${i % 120}`, value: 'v' } };
      assert.equal(memo(args), plain(args), `key ${String(args.message.key)} over ${n}`);
      assert.equal(memo(args), plain(args), 'the remembered answer is the same');
    }
  }
  // A known value of Java's partitioner (murmur2 of "foo" over 8 partitions).
  assert.equal(
    memo({ topic: 't', partitionMetadata: meta(8), message: { key: 'foo', value: 'v' } }),
    plain({ topic: 't', partitionMetadata: meta(8), message: { key: 'foo', value: 'v' } }),
  );
});

test('the memoised partitioner honours an explicit partition and spreads keyless records over available partitions', () => {
  const memo = createMemoPartitioner()();
  assert.equal(memo({ topic: 't', partitionMetadata: meta(4), message: { key: 'k', value: 'v', partition: 3 } }), 3);
  const seen = new Set<number>();
  for (let i = 0; i < 40; i++) seen.add(memo({ topic: 't', partitionMetadata: meta(4, [1]), message: { value: 'v' } }));
  assert.deepEqual([...seen].sort(), [0, 2, 3]);
});
