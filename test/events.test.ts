import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createKafka, createProducer } from '../platform/kafka/kafka.js';
import { topicNames } from '../protocol/topics.js';
import { decodeRecord, encodeRecord } from '../schemas/registry.js';
import { connectClient, startStack, type TestStack } from './support/stack.js';
import { stack as infra, uniqueId } from './support/env.js';
import { businessEvent } from './support/eventRecords.js';

describe('business events on push.events (Avro)', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.stop();
  });

  test('a record from a plain kafkajs producer is delivered; poison goes to push.dlq and the next good one still arrives', { timeout: 60_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const kafka = createKafka({ clientId: 'events-test', brokers: infra.kafkaBrokers, logger: pino({ level: 'silent' }) });
    const producer = createProducer(kafka);
    await producer.connect();
    const dlqConsumer = kafka.consumer({ groupId: uniqueId('dlq-reader') });
    try {
      const client = await connectClient(s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws', (await s.token('hank', 'phone')).token);
      const event = (payload: unknown) => encodeRecord('BusinessEvent', businessEvent(s.app, ['hank'], payload));
      const good = event({ via: 'kafka', n: 1 });
      await producer.send({ topic: topics.events, messages: [{ key: 'hank', value: good.value, headers: good.headers }] });
      await client.waitFor(1, 30_000);
      assert.deepEqual(client.messages[0]!.payload, { via: 'kafka', n: 1 });

      const unknownApp = encodeRecord('BusinessEvent', { ...decodeRecord('BusinessEvent', good.value, good.headers), app: 'no-such-app' });
      await producer.send({
        topic: topics.events,
        messages: [
          { key: 'hank', value: Buffer.from('definitely not avro'), headers: good.headers },
          { key: 'hank', value: Buffer.from('no header at all') },
          { key: 'hank', value: unknownApp.value, headers: unknownApp.headers },
          { key: 'hank', value: event({ via: 'kafka', n: 2 }).value, headers: good.headers },
        ],
      });
      await client.waitFor(2, 30_000);
      assert.deepEqual(client.messages[1]!.payload, { via: 'kafka', n: 2 });

      await dlqConsumer.connect();
      await dlqConsumer.subscribe({ topic: topics.dlq, fromBeginning: true });
      const letters: { errorCode: string; reason: string; sourceTopic: string }[] = [];
      const gotThree = new Promise<void>((resolve) => {
        void dlqConsumer.run({
          eachMessage: async ({ message }) => {
            letters.push(decodeRecord('DeadLetter', message.value, message.headers));
            if (letters.length === 3) resolve();
          },
        });
      });
      await gotThree;
      assert.deepEqual(
        letters.map((l) => l.errorCode),
        ['UNDECODABLE', 'SCHEMA_HEADER_MISSING', 'UNKNOWN_APP'],
      );
      assert.ok(letters.every((l) => l.sourceTopic === topics.events && l.reason.length > 0));
      await client.close();
    } finally {
      await dlqConsumer.disconnect();
      await producer.disconnect();
    }
  });
});
