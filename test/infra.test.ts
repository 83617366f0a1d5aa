import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { createKafka, createProducer, ensureTopics } from '../common/src/kafka.js';
import { stack, uniqueId } from './support/env.js';

test('Kafka: a record produced to a fresh topic is consumed back', { timeout: 60_000 }, async () => {
  const kafka = createKafka({ clientId: 'infra-test', brokers: stack.kafkaBrokers, logger: pino({ level: 'silent' }) });
  const topic = uniqueId('test.infra');
  await ensureTopics(kafka, [{ topic, numPartitions: 2 }]);
  const producer = createProducer(kafka);
  const consumer = kafka.consumer({ groupId: uniqueId('infra-test') });
  try {
    await producer.connect();
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const received = new Promise<{ key: string; value: string }>((resolve) => {
      void consumer.run({
        eachMessage: async ({ message }) => resolve({ key: String(message.key), value: String(message.value) }),
      });
    });
    await producer.send({ topic, messages: [{ key: 'k1', value: 'hello kafka' }] });
    assert.deepEqual(await received, { key: 'k1', value: 'hello kafka' });
  } finally {
    await consumer.disconnect();
    await producer.disconnect();
  }
});

test('Redis: a key set with an expiry reads back and carries its TTL', async () => {
  const redis = new Redis(stack.redisUrl);
  const key = uniqueId('test:infra');
  try {
    await redis.set(key, 'v1', 'EX', 30);
    assert.equal(await redis.get(key), 'v1');
    const ttl = await redis.ttl(key);
    assert.ok(ttl > 0 && ttl <= 30, `ttl ${ttl}`);
  } finally {
    await redis.del(key);
    redis.disconnect();
  }
});

test('MongoDB: insert, index and find', async () => {
  const client = new MongoClient(stack.mongoUrl, { serverSelectionTimeoutMS: 5000 });
  const db = client.db(uniqueId('test_infra').replace(/-/g, '_'));
  try {
    const coll = db.collection<{ _id: string; user: string; n: number }>('things');
    await coll.createIndex({ user: 1, n: 1 });
    await coll.insertMany([
      { _id: 'a', user: 'u1', n: 2 },
      { _id: 'b', user: 'u1', n: 1 },
      { _id: 'c', user: 'u2', n: 3 },
    ]);
    const found = await coll.find({ user: 'u1' }).sort({ n: 1 }).toArray();
    assert.deepEqual(found.map((d) => d._id), ['b', 'a']);
    const indexes = await coll.listIndexes().toArray();
    assert.ok(indexes.some((i) => i.name === 'user_1_n_1'), JSON.stringify(indexes));
  } finally {
    await db.dropDatabase();
    await client.close();
  }
});
