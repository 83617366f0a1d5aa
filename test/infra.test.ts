import fs from 'node:fs';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { pino } from 'pino';
import { createKafka, createProducer, ensureTopics } from '../platform/kafka/kafka.js';
import { mongoBackend, postgresPort } from '../infra/config.js';
import { isAlive } from '../infra/process.js';
import { startPrivateMongo } from '../infra/stack.js';
import { stack, uniqueId } from './support/env.js';
import { eventually } from './support/eventually.js';

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
    assert.deepEqual(
      found.map((d) => d._id),
      ['b', 'a'],
    );
    const indexes = await coll.listIndexes().toArray();
    assert.ok(
      indexes.some((i) => i.name === 'user_1_n_1'),
      JSON.stringify(indexes),
    );
  } finally {
    await db.dropDatabase();
    await client.close();
  }
});

/**
 * After a PostgreSQL restart, FerretDB's pool still holds connections the old server closed: a
 * request on one fails once (57P01, "terminating connection due to administrator command") and the
 * connection is dropped. A careful client retries, as here, for a bounded time; a duplicate key
 * means an earlier attempt did commit.
 */
async function insertRetrying(insert: () => Promise<unknown>, timeoutMs = 15_000): Promise<void> {
  const inserted = async () => {
    try {
      await insert();
    } catch (err) {
      if ((err as { code?: number }).code !== 11000) throw err;
    }
    return true;
  };
  await eventually(inserted, { what: 'the insert to be acknowledged', timeoutMs, intervalMs: 100 });
}

test(
  'PostgreSQL + FerretDB pair: answers, keeps acknowledged writes across a FerretDB restart, a PostgreSQL restart and a PostgreSQL kill, then stops',
  { timeout: 120_000 },
  async () => {
    const mongo = await startPrivateMongo({ backend: 'postgresql' });
    const postgres = mongo.postgres;
    const dirs = [mongo.dir, postgres?.dir ?? ''];
    try {
      assert.ok(postgres, 'a FerretDB on PostgreSQL carries its cluster');
      assert.equal(mongo.backend, 'postgresql');
      const written: string[] = [];
      /** One acknowledged write per phase, then every earlier one must still read back. */
      const writeAndCheck = async (phase: string): Promise<void> => {
        const client = new MongoClient(mongo.url, { serverSelectionTimeoutMS: 10_000 });
        try {
          const coll = client.db('infra_test').collection<{ _id: string }>('phases');
          await insertRetrying(() => coll.insertOne({ _id: phase }));
          written.push(phase);
          const found = await coll.find({}).sort({ _id: 1 }).toArray();
          assert.deepEqual(
            found.map((d) => d._id),
            [...written].sort(),
            `after ${phase}`,
          );
        } finally {
          await client.close();
        }
      };
      await writeAndCheck('1-start');
      await mongo.restart();
      await writeAndCheck('2-ferretdb-restarted');
      await postgres.restart();
      // FerretDB's pool reconnects on its own: the same FerretDB process keeps serving.
      await writeAndCheck('3-postgres-restarted');
      await postgres.kill();
      await postgres.restart();
      await writeAndCheck('4-postgres-killed');
    } finally {
      await mongo.dispose();
    }
    for (const dir of dirs) assert.equal(fs.existsSync(dir), false, `${dir} removed`);
    assert.equal(isAlive(mongo.pid), false);
    assert.equal(isAlive(postgres.pid), false);
  },
);

test('infra config: a bad PUSH_MONGO_BACKEND or PUSH_POSTGRES_PORT fails with a message naming it', () => {
  assert.equal(mongoBackend({}), 'postgresql');
  assert.equal(mongoBackend({ PUSH_MONGO_BACKEND: 'postgresql' }), 'postgresql');
  assert.throws(
    () => mongoBackend({ PUSH_MONGO_BACKEND: 'sqlite' }),
    /^Error: PUSH_MONGO_BACKEND=sqlite: FerretDB on SQLite is no longer a stack backend .*SQLITE_BUSY/,
  );
  assert.throws(() => mongoBackend({ PUSH_MONGO_BACKEND: 'mysql' }), /^Error: PUSH_MONGO_BACKEND=mysql: expected postgresql$/);
  assert.equal(postgresPort({}), 54329);
  assert.equal(postgresPort({ PUSH_POSTGRES_PORT: '55432' }), 55432);
  for (const bad of ['5432x', '80', '70000']) {
    assert.throws(() => postgresPort({ PUSH_POSTGRES_PORT: bad }), new RegExp(`^Error: PUSH_POSTGRES_PORT=${bad}: expected a port number`));
  }
});
