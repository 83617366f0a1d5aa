import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import type { Producer } from 'kafkajs';
import { createAppStore } from '../store/apps.js';
import { createKafka, createProducer } from '../platform/kafka/kafka.js';
import { topicNames } from '../protocol/topics.js';
import { encodeRecord } from '../schemas/registry.js';
import { adminCall, connectClient, startStack, wsOf, type TestStack } from './support/stack.js';
import { stack as infra } from './support/env.js';
import { eventually } from './support/eventually.js';

const admin = adminCall;

/** The first dead letter that matches, once the DLQ list has one; bounded. */
async function waitEntry(s: TestStack, match: (e: any) => boolean, timeoutMs = 30_000): Promise<any> {
  const list = await eventually(
    async () => {
      const r = await admin(s, '/v1/admin/dlq?limit=500');
      assert.equal(r.status, 200);
      return r.body;
    },
    { what: `a dead letter matching ${String(match)}`, until: (body) => body.entries.some(match), timeoutMs, intervalMs: 100 },
  );
  return list.entries.find(match);
}

describe('dead letters', () => {
  let s: TestStack;
  let producer: Producer;
  before(async () => {
    s = await startStack({ env: { PUSHER_HEARTBEAT_MS: '10000' } });
    producer = createProducer(createKafka({ clientId: 'dlq-test', brokers: infra.kafkaBrokers, logger: pino({ level: 'silent' }) }));
    await producer.connect();
  });
  after(async () => {
    await producer?.disconnect();
    await s?.stop();
  });

  test('poison records of every consumer land with their reason; a fixed one is replayed and delivered; purge removes', { timeout: 120_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const lateApp = `${s.app}-late`;
    // An event for an app that does not exist yet: it fails for a reason an operator can fix.
    const event = encodeRecord('BusinessEvent', {
      app: lateApp,
      to: { users: ['ivy'], group: null, all: false },
      payload: JSON.stringify({ hello: 'late' }),
      persistent: true,
      ttlSeconds: 600,
      idempotencyKey: null,
      collapseKey: null,
      traceId: null,
    });
    await producer.send({ topic: topics.events, messages: [{ key: 'ivy', value: event.value, headers: event.headers }] });
    const nodeTopic = topics.node(`${s.env.KAFKA_TOPIC_PREFIX.slice(0, -1)}-p1`);
    await producer.send({ topic: topics.ingest, messages: [{ key: 'x|y', value: Buffer.from('not avro'), headers: { 'push-schema': 'IngestRecord.v1' } }] });
    await producer.send({ topic: nodeTopic, messages: [{ key: 'x|y', value: Buffer.from('no header') }] });

    const late = await waitEntry(s, (e) => e.sourceTopic === topics.events);
    assert.equal(late.errorCode, 'UNKNOWN_APP');
    assert.match(late.reason, /unknown app/);
    assert.equal(late.consumer, topics.groups.collectorEvents);
    assert.equal(late.key, 'ivy');
    assert.equal(late.state, 'new');
    assert.equal(late.headers['push-schema'], event.headers['push-schema']);
    assert.equal(Buffer.from(late.valueBase64, 'base64').compare(event.value), 0);
    assert.match(late.id, /^\d+-\d+$/);
    assert.ok(Math.abs(Date.parse(late.failedAt) - Date.now()) < 60_000);
    const ingestPoison = await waitEntry(s, (e) => e.sourceTopic === topics.ingest);
    assert.deepEqual([ingestPoison.errorCode, ingestPoison.consumer], ['UNDECODABLE', topics.groups.dispatcher]);
    const nodePoison = await waitEntry(s, (e) => e.sourceTopic === nodeTopic);
    assert.equal(nodePoison.errorCode, 'SCHEMA_HEADER_MISSING');
    assert.match(nodePoison.consumer, /push-pusher-/);
    assert.equal(typeof nodePoison.sourceOffset, 'string');

    const shown = await admin(s, `/v1/admin/dlq/${late.id}`);
    assert.deepEqual(shown.body, late);
    const filtered = await admin(s, `/v1/admin/dlq?sourceTopic=${encodeURIComponent(topics.ingest)}`);
    assert.deepEqual(
      filtered.body.entries.map((e: any) => e.id),
      [ingestPoison.id],
    );
    assert.equal(filtered.body.total, 1);

    // The fix: the app now exists. Replaying re-submits the original record to push.events.
    await createAppStore({ db: s.mongo.db(s.env.MONGO_DB) }).upsert({
      id: lateApp,
      apiKeys: [`${s.apiKey}-late`],
      allowedOrigins: ['*'],
      deviceMode: 'coexist',
      limits: {},
      openGroups: true,
    });
    const tokenRes = await fetch(`${s.auth.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.apiKey}-late`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'ivy', deviceId: 'phone' }),
    });
    assert.equal(tokenRes.status, 200);
    const ivy = await connectClient(wsOf(s.pushers[0]!.url), ((await tokenRes.json()) as { token: string }).token);
    // The collector remembers "no such app" for a few seconds; a replay in that window fails
    // again and lands in the DLQ again (pointing at this entry), so try until it is delivered.
    let replayId = late.id as string;
    for (let attempt = 1; ivy.messages.length === 0; attempt++) {
      const r = await admin(s, '/v1/admin/dlq/replay', { ids: [replayId] });
      assert.deepEqual(r.body, { replayed: 1, failed: [] });
      const outcome = await Promise.race([
        ivy.waitFor(1, 30_000).then(
          () => 'delivered',
          () => 'timeout',
        ),
        waitEntry(s, (e) => e.headers['push-dlq-replay'] === replayId, 30_000).then(
          (e) => e.id as string,
          () => 'timeout',
        ),
      ]);
      assert.notEqual(outcome, 'timeout', 'the replayed record was neither delivered nor dead-lettered again');
      if (outcome !== 'delivered') {
        assert.ok(attempt < 10, 'the replayed record kept failing');
        replayId = outcome;
        await new Promise((res) => setTimeout(res, 1000));
      }
    }
    assert.deepEqual(ivy.messages[0]!.payload, { hello: 'late' });
    assert.equal((await admin(s, `/v1/admin/dlq/${late.id}`)).body.state, 'replayed');
    const unknown = await admin(s, '/v1/admin/dlq/replay', { ids: ['0-999999'] });
    assert.deepEqual(unknown.body, { replayed: 0, failed: [{ id: '0-999999', reason: 'no such dead letter (unknown or purged)' }] });

    const purged = await admin(s, '/v1/admin/dlq/purge', { ids: [ingestPoison.id] });
    assert.deepEqual(purged.body, { purged: 1 });
    const gone = await admin(s, `/v1/admin/dlq/${ingestPoison.id}`);
    assert.deepEqual([gone.status, gone.body.error.code], [404, 'NOT_FOUND']);
    assert.ok(!(await admin(s, '/v1/admin/dlq')).body.entries.some((e: any) => e.id === ingestPoison.id));
    assert.deepEqual((await admin(s, '/v1/admin/dlq/replay', { ids: [ingestPoison.id] })).body.failed.length, 1);
    const rest = (await admin(s, '/v1/admin/dlq')).body.total;
    assert.deepEqual((await admin(s, '/v1/admin/dlq/purge', { all: true })).body, { purged: rest });
    assert.deepEqual((await admin(s, '/v1/admin/dlq')).body, { total: 0, entries: [] });
    await ivy.close();
  });

  test(
    'header names with "." or "$", and NUL in names, values and filters, are kept and shown; the index does not stall on them',
    { timeout: 60_000 },
    async () => {
      const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
      const headers = { 'push-schema': 'BusinessEvent.v1', 'content.type': 'a.b', $op: 'x', 'nul\u0000name': 'v\u0000w', 'x-trace': '\u0000' };
      await producer.send({ topic: topics.events, messages: [{ key: 'hostile', value: Buffer.from('not avro \u0000'), headers }] });
      // A later poison record of another topic is indexed too: nothing stalled behind the first.
      await producer.send({
        topic: topics.ingest,
        messages: [{ key: 'after|hostile', value: Buffer.from('still not avro'), headers: { 'push-schema': 'IngestRecord.v1' } }],
      });
      const hostile = await waitEntry(s, (e) => e.key === 'hostile');
      await waitEntry(s, (e) => e.key === 'after|hostile');
      for (const [k, v] of Object.entries(headers)) assert.equal(hostile.headers[k], v, `header ${JSON.stringify(k)}`);
      assert.deepEqual((await admin(s, `/v1/admin/dlq/${hostile.id}`)).body.headers, hostile.headers);
      // Filters carrying NUL match nothing (no stored value can hold one) instead of failing.
      const byTopic = await admin(s, `/v1/admin/dlq?sourceTopic=${encodeURIComponent('push.\u0000')}`);
      assert.deepEqual([byTopic.status, byTopic.body], [200, { total: 0, entries: [] }]);
      const tasks = await admin(s, `/v1/tasks?app=${encodeURIComponent('\u008cF\u0000')}&limit=5`);
      assert.deepEqual([tasks.status, tasks.body], [200, { tasks: [] }]);
    },
  );

  test('bad requests: 400 with the reason, 401 without the operator key, 404 for unknown ids', { timeout: 30_000 }, async () => {
    const cases: [string, unknown, RegExp][] = [
      ['/v1/admin/dlq/replay', {}, /give ids/],
      ['/v1/admin/dlq/replay', { ids: 'x' }, /ids must be a list/],
      ['/v1/admin/dlq/replay', { ids: ['nope'] }, /ids must be a list/],
      ['/v1/admin/dlq/purge', { ids: ['0-1'], all: true }, /either ids or all/],
      ['/v1/admin/dlq/purge', { all: 'yes' }, /all must be a boolean/],
      ['/v1/admin/dlq/purge', { every: true }, /unknown field every/],
    ];
    for (const [path, body, message] of cases) {
      const r = await admin(s, path, body);
      assert.equal(r.status, 400, `${path} ${JSON.stringify(body)}`);
      assert.equal(r.body.error.code, 'INVALID_REQUEST');
      assert.match(r.body.error.message, message);
    }
    const badLimit = await admin(s, '/v1/admin/dlq?limit=0');
    assert.deepEqual([badLimit.status, badLimit.body.error.code], [400, 'INVALID_REQUEST']);
    assert.equal((await admin(s, '/v1/admin/dlq', undefined, 'Bearer wrong')).status, 401);
    assert.equal((await admin(s, '/v1/admin/dlq/purge', { all: true }, 'Bearer wrong')).status, 401);
    assert.equal((await admin(s, '/v1/admin/dlq/0-123456')).status, 404);
    assert.equal((await admin(s, '/v1/admin/dlq/abc')).status, 404);
  });
});
