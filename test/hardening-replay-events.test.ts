import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { createKafka, createProducer } from '../platform/kafka/kafka.js';
import { createDeliveryStore } from '../store/deliveryStore.js';
import { topicNames } from '../protocol/topics.js';
import { encodeRecord } from '../schemas/registry.js';
import { stack as infra } from './support/env.js';
import { eventually } from './support/eventually.js';
import { adminCall as admin, connectClient, startStack, wsOf, type TestStack } from './support/stack.js';

/** Idempotency window of the collector in this stack: short, so the replay runs well after it. */
const WINDOW_SECONDS = 2;

describe('push.events replay after the idempotency window (issue 12 #14)', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ env: { IDEMPOTENCY_WINDOW_SECONDS: String(WINDOW_SECONDS), PUSHER_HEARTBEAT_MS: '10000' } });
  });
  after(async () => {
    await s?.stop();
  });

  test('keeps original ids, skips expired records, never resends acked ones', { timeout: 120_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
    const producer = createProducer(createKafka({ clientId: 'hardening-replay-events', brokers: infra.kafkaBrokers, logger: pino({ level: 'silent' }) }));
    await producer.connect();
    try {
      const event = (n: string, extra: { persistent?: boolean; ttlSeconds?: number; idempotencyKey?: string } = {}) => {
        const e = encodeRecord('BusinessEvent', {
          app: s.app,
          to: { users: ['rio'], group: null, all: false },
          payload: JSON.stringify({ n }),
          persistent: extra.persistent ?? true,
          ttlSeconds: extra.ttlSeconds ?? 600,
          idempotencyKey: extra.idempotencyKey ?? null,
          collapseKey: null,
          traceId: null,
        });
        // One key: one partition, so the marker below is handled after the replayed copies.
        return { key: 'rio', value: e.value, headers: e.headers };
      };
      const token = (await s.token('rio', 'phone')).token;
      const rio = await connectClient(wsOf(s.pushers[0]!.url), token);
      const from = Date.now();
      await producer.send({
        topic: topics.events,
        messages: [
          event('acked'),
          event('acked-own-key', { idempotencyKey: `own-${from}` }),
          event('expires', { ttlSeconds: 2 }),
          event('transient', { persistent: false }),
          event('unacked'),
        ],
      });
      await rio.waitFor(5, 60_000);
      const to = Date.now();
      const first = new Map(rio.messages.map((m) => [m.payload.n as string, m.id]));
      assert.deepEqual([...first.keys()], ['acked', 'acked-own-key', 'expires', 'transient', 'unacked']);
      const acked = [first.get('acked')!, first.get('acked-own-key')!];
      rio.ack(acked);
      await eventually(
        async () => {
          const state = await store.deviceState(s.app, 'rio', 'phone');
          return acked.every((id) => state.acked.includes(id));
        },
        { what: 'acks stored' },
      ).catch((err: Error) => assert.fail(`${err.message}; frames: ${JSON.stringify(rio.frames.filter((f) => f.type !== 'message'))}`));

      // Past the idempotency window and past the short-lived record's ttl.
      const past = to + Math.max(WINDOW_SECONDS, 2) * 1000 + 500;
      await new Promise((r) => setTimeout(r, Math.max(0, past - Date.now())));

      const dry = await admin(s, '/v1/admin/replays', { topic: 'push.events', from, to, dryRun: true });
      assert.equal(dry.status, 200, JSON.stringify(dry.body));
      assert.deepEqual([dry.body.total, dry.body.skipped.expired], [4, 1], JSON.stringify(dry.body));
      const started = await admin(s, '/v1/admin/replays', { topic: 'push.events', from, to, app: s.app });
      assert.equal(started.status, 202, JSON.stringify(started.body));
      const done = await eventually(
        async () => {
          const r = (await admin(s, `/v1/admin/replays/${started.body.id}`)).body;
          return r.state !== 'running' ? r : undefined;
        },
        { what: 'replay finished', timeoutMs: 60_000, intervalMs: 100 },
      );
      assert.deepEqual([done.state, done.progress.replayed], ['done', 4], JSON.stringify(done));

      // The marker goes the same way (same key, same partition), behind the replayed copies.
      await producer.send({ topic: topics.events, messages: [event('marker')] });
      await rio.waitFor(6, 60_000);
      assert.deepEqual(
        rio.messages.slice(5).map((m) => m.payload.n),
        ['marker'],
        'nothing of the replay reached the connected device: not the acked, not the expired, not a copy under a new id',
      );
      const marker = rio.messages[5]!.id;
      rio.ack([marker]);
      await eventually(async () => (await store.deviceState(s.app, 'rio', 'phone')).acked.includes(marker), { what: 'marker ack stored' });
      await rio.close();

      // Back again: only the unacknowledged message, under its original id, then a live one.
      const again = await connectClient(wsOf(s.pushers[0]!.url), token);
      await again.waitFor(1, 30_000);
      await producer.send({ topic: topics.events, messages: [event('marker-2', { persistent: false })] });
      await again.waitFor(2, 60_000);
      assert.deepEqual(
        again.messages.map((m) => [m.payload.n, m.id]),
        [
          ['unacked', first.get('unacked')],
          ['marker-2', again.messages[1]!.id],
        ],
      );
      await again.close();
    } finally {
      await producer.disconnect();
    }
  });
});
