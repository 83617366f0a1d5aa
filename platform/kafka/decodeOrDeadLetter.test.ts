import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KafkaMessage, Message } from 'kafkajs';
import type { BatchPublisher } from './batchPublisher.js';
import { decodeRecord, encodeRecord, SCHEMA_HEADER } from '../../schemas/registry.js';
import type { NodeDelivery } from '../../schemas/types.js';
import { deadLetter, decodeOrDeadLetter, type DeadLetterSink } from './decodeOrDeadLetter.js';

const delivery = (id: string): NodeDelivery => ({
  id,
  app: 'a',
  target: 'USER',
  user: 'u',
  group: null,
  payload: '{}',
  persistent: false,
  createdAt: 0,
  expiresAt: 1000,
  collapseKey: null,
  traceId: `t-${id}`,
  taskId: null,
});

const good = (id: string, offset: number): KafkaMessage => {
  const { value, headers } = encodeRecord('NodeDelivery', delivery(id));
  return { key: Buffer.from(`k-${id}`), value, headers, offset: String(offset), timestamp: '0', attributes: 0 };
};
const bad = (offset: number, headers: KafkaMessage['headers'] = {}): KafkaMessage => ({
  key: null,
  value: Buffer.from('not avro'),
  headers,
  offset: String(offset),
  timestamp: '0',
  attributes: 0,
});

/** A sink whose publisher, counter and logger record what they were given; no Kafka. */
function fakeSink(opts: { fail?: boolean; fields?: DeadLetterSink['log']['fields'] } = {}) {
  const seen = { published: [] as { topic: string; messages: Message[] }[], counted: [] as string[], logged: [] as [object, string][] };
  const publisher: BatchPublisher = {
    publish: async (topic, messages) => {
      if (opts.fail) throw new Error('broker down');
      seen.published.push({ topic, messages });
    },
    queued: () => 0,
    close: async () => undefined,
  };
  const sink: DeadLetterSink = {
    publisher,
    dlqTopic: 'push.dlq',
    consumer: 'push-node-n1',
    count: (code) => seen.counted.push(code),
    logger: { warn: ((obj: object, msg: string) => void seen.logged.push([obj, msg])) as DeadLetterSink['logger']['warn'] },
    log: { message: 'undecodable record sent to dead letters', fields: opts.fields ?? ['offset', 'code'] },
  };
  return { sink, seen };
}

const deadLetterOf = (m: Message) => decodeRecord('DeadLetter', m.value as Buffer, { [SCHEMA_HEADER]: m.headers![SCHEMA_HEADER] as string });

test('returns the records that decode with their messages, in order; the others are dead-lettered, counted and logged once', async () => {
  const { sink, seen } = fakeSink();
  const messages = [good('m1', 4), bad(5), good('m2', 6), bad(7, { [SCHEMA_HEADER]: 'Nope.v1' })];
  const out = await decodeOrDeadLetter(sink, 'NodeDelivery', 'push.node.n1', 2, messages);
  assert.deepEqual(
    out.decoded.map((d) => [d.message.offset, d.record.id]),
    [
      ['4', 'm1'],
      ['6', 'm2'],
    ],
  );
  assert.equal(out.decoded[0]!.message, messages[0]);
  assert.deepEqual(
    out.deadLettered.map((m) => m.offset),
    ['5', '7'],
  );
  assert.deepEqual(seen.counted, ['SCHEMA_HEADER_MISSING', 'SCHEMA_UNKNOWN']);
  assert.deepEqual(
    seen.logged.map(([obj, msg]) => [JSON.stringify(obj), msg]),
    [
      ['{"offset":"5","code":"SCHEMA_HEADER_MISSING"}', 'undecodable record sent to dead letters'],
      ['{"offset":"7","code":"SCHEMA_UNKNOWN"}', 'undecodable record sent to dead letters'],
    ],
  );
  assert.deepEqual(
    seen.published.map((p) => p.topic),
    ['push.dlq', 'push.dlq'],
  );
  const dl = deadLetterOf(seen.published[0]!.messages[0]!);
  assert.equal(dl.sourceTopic, 'push.node.n1');
  assert.equal(dl.partition, 2);
  assert.equal(dl.offset, '5');
  assert.equal(dl.errorCode, 'SCHEMA_HEADER_MISSING');
  assert.equal(dl.consumer, 'push-node-n1');
  assert.deepEqual(dl.value, Buffer.from('not avro'));
  assert.match(dl.reason, /push-schema/);
});

test('a batch that all decodes publishes nothing', async () => {
  const { sink, seen } = fakeSink();
  const out = await decodeOrDeadLetter(sink, 'NodeDelivery', 't', 0, [good('m1', 1)]);
  assert.equal(out.decoded.length, 1);
  assert.deepEqual(out.deadLettered, []);
  assert.deepEqual(seen.published, []);
  assert.deepEqual(seen.counted, []);
});

test('a record of another kind is dead-lettered as a kind mismatch', async () => {
  const { sink, seen } = fakeSink();
  const out = await decodeOrDeadLetter(sink, 'IngestRecord', 't', 0, [good('m1', 1)]);
  assert.deepEqual(out.decoded, []);
  assert.deepEqual(seen.counted, ['SCHEMA_KIND_MISMATCH']);
});

test('a dead letter that cannot be written rejects, with nothing counted or logged', async () => {
  const { sink, seen } = fakeSink({ fail: true });
  await assert.rejects(decodeOrDeadLetter(sink, 'NodeDelivery', 't', 0, [good('m1', 1), bad(2), bad(3)]), /broker down/);
  assert.deepEqual(seen.counted, []);
  assert.deepEqual(seen.logged, []);
});

test('deadLetter logs the fields asked for, in their order, with the reason cut to 300 characters', async () => {
  const { sink, seen } = fakeSink({ fields: ['topic', 'partition', 'offset', 'code', 'reason'] });
  await deadLetter(sink, { topic: 'push.events', partition: 3, message: bad(9) }, 'UNKNOWN_APP', 'x'.repeat(400));
  assert.deepEqual(seen.counted, ['UNKNOWN_APP']);
  const [obj] = seen.logged[0]!;
  assert.deepEqual(Object.keys(obj), ['topic', 'partition', 'offset', 'code', 'reason']);
  assert.deepEqual(obj, { topic: 'push.events', partition: 3, offset: '9', code: 'UNKNOWN_APP', reason: 'x'.repeat(300) });
  assert.equal(deadLetterOf(seen.published[0]!.messages[0]!).reason, 'x'.repeat(400));
});
