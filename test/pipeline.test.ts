import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, startStack, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { pino } from 'pino';
import { createKafka } from '../platform/kafka/kafka.js';
import { topicNames } from '../protocol/topics.js';
import { createDeliveryStore } from '../store/deliveryStore.js';
import { stack as infra } from './support/env.js';

describe('core pipeline: HTTP to WebSocket', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ pushers: 1, dispatchers: 1 });
  });
  after(async () => {
    await s?.stop();
  });

  test('a message submitted over HTTP reaches the connected client', { timeout: 30_000 }, async () => {
    const { token, nodes } = await s.token('alice', 'phone');
    assert.equal(nodes.length >= 1, true);
    const client = await connectClient(s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws', token);
    const res = await s.send({ to: { users: ['alice'] }, payload: { hello: 'world' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    assert.match(res.body.id, /^[0-9A-Z]{26}$/);
    await client.waitFor(1);
    assert.equal(client.messages[0]!.id, res.body.id);
    assert.deepEqual(client.messages[0]!.payload, { hello: 'world' });
    assert.equal(client.messages[0]!.persistent, true);
    await client.close();
  });

  test('offline messages arrive on connect in order, then live; acked ones never again', { timeout: 40_000 }, async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await s.send({ to: { users: ['bob'] }, payload: { n: i } });
      assert.equal(r.status, 202);
      ids.push(r.body.id);
    }
    const { token } = await s.token('bob', 'laptop');
    const wsUrl = s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws';
    const c1 = await connectClient(wsUrl, token);
    await c1.waitFor(5);
    assert.deepEqual(
      c1.messages.map((m) => m.id),
      ids,
    );
    const live = await s.send({ to: { users: ['bob'] }, payload: { n: 5 } });
    await c1.waitFor(6);
    assert.equal(c1.messages[5]!.id, live.body.id);
    c1.ack([...ids, live.body.id]);
    // The ack is written in the background; wait until the store reflects it.
    const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
    await eventually(async () => (await store.deviceState(s.app, 'bob', 'laptop')).acked.length === 6, { what: 'acks stored' });
    await c1.close();
    const c2 = await connectClient(wsUrl, token);
    const marker = await s.send({ to: { users: ['bob'] }, payload: { n: 'marker' } });
    await c2.waitFor(1);
    assert.deepEqual(
      c2.messages.map((m) => m.id),
      [marker.body.id],
    );
    await c2.close();
  });

  test('a collapse key keeps only the newest undelivered message for an offline user', { timeout: 30_000 }, async () => {
    const ids: string[] = [];
    for (const status of ['packed', 'shipped', 'delivered']) {
      const r = await s.send({ to: { users: ['olga'] }, payload: { status }, collapseKey: 'order-42-status' });
      assert.equal(r.status, 202);
      ids.push(r.body.id);
    }
    const other = await s.send({ to: { users: ['olga'] }, payload: { status: 'unrelated' } });
    const c = await connectClient(s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws', (await s.token('olga', 'phone')).token);
    await c.waitFor(2);
    assert.deepEqual(
      c.messages.map((m) => m.id),
      [ids[2], other.body.id],
    );
    assert.deepEqual(c.messages[0]!.payload, { status: 'delivered' });
    await c.close();
  });

  test('the dispatcher commits what it forwarded, so a restart does not re-route old records', { timeout: 30_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const admin = createKafka({ clientId: 'offsets-test', brokers: infra.kafkaBrokers, logger: pino({ level: 'silent' }) }).admin();
    await admin.connect();
    try {
      const ends = await admin.fetchTopicOffsets(topics.ingest);
      const total = ends.reduce((n, p) => n + Number(p.high), 0);
      assert.ok(total > 0, 'earlier tests produced ingest records');
      await eventually(
        async () => {
          const [committed] = await admin.fetchOffsets({ groupId: topics.groups.dispatcher, topics: [topics.ingest] });
          const at = (partition: number) => committed!.partitions.find((p) => p.partition === partition)?.offset;
          // A partition that never had a record has nothing to commit (-1).
          return ends.every((e) => at(e.partition) === e.high || (e.high === '0' && at(e.partition) === '-1'));
        },
        { what: 'dispatcher offsets committed up to the end of push.ingest' },
      );
    } finally {
      await admin.disconnect();
    }
  });
});
