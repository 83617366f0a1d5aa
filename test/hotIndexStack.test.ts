import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { startPrivateRedis } from '../infra/stack.js';
import { createDeliveryStore } from '../store/deliveryStore.js';
import { hotIndexKey, userKey } from '../store/keys.js';
import { connectClient, wsOf, startStack, type TestClient, type TestStack } from './support/stack.js';
import { submitNumbered } from './support/faultClients.js';
import { eventually } from './support/eventually.js';

/** Waits for `what`, bounded (30 s unless given). */
/**
 * The hot index under a whole stack, on a private Redis: resumes are served from it, and a
 * FLUSHALL between messages stored for a device that is away loses none of them, redelivers
 * none it acked, and keeps their order.
 */
describe('delivery hot index in a stack', () => {
  let redisServer: Awaited<ReturnType<typeof startPrivateRedis>>;
  let redis: Redis;
  let s: TestStack;
  let client: TestClient | undefined;

  before(async () => {
    redisServer = await startPrivateRedis();
    s = await startStack({ pushers: 1, env: { REDIS_URL: `redis://127.0.0.1:${redisServer.port}`, PUSHER_HEARTBEAT_MS: '10000' } });
    redis = new Redis(`redis://127.0.0.1:${redisServer.port}`, { keyPrefix: s.env.REDIS_KEY_PREFIX });
  });
  after(async () => {
    await client?.close();
    redis?.disconnect();
    await s?.stop().catch(() => undefined);
    await redisServer?.dispose();
  });

  test('resumes from the hot index, and a FLUSHALL while the device is away loses nothing', { timeout: 120_000 }, async () => {
    const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
    const send = async (n: number) => {
      const id = await submitNumbered(s, 'ivy', n, 'h');
      await eventually(async () => (await store.deliveryIds(s.app, 'ivy')).includes(id), { what: `message ${n} stored`, timeoutMs: 30_000, intervalMs: 100 });
      return id;
    };
    const connect = async () => connectClient(wsOf(s.pushers[0]!.url), (await s.token('ivy', 'phone')).token);
    const index = hotIndexKey(userKey(s.app, 'ivy'));
    const hotReads = async () => {
      const text = await (await fetch(`${s.pushers[0]!.url}/metrics`)).text();
      return Number(/^push_store_user_reads\{[^}]*source="hot"[^}]*\} (\d+)/m.exec(text)?.[1] ?? 'NaN');
    };

    client = await connect();
    const m0 = await send(0);
    await client.waitFor(1);
    client.ack([m0]);
    await eventually(async () => (await store.deviceState(s.app, 'ivy', 'phone')).acked.includes(m0), {
      what: 'ack stored',
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    await client.close();
    assert.equal(await redis.exists(index), 1, 'the connect installed the index');

    const [m1, m2] = [await send(1), await send(2)];
    const hotBefore = await hotReads();
    client = await connect();
    await client.waitFor(2);
    assert.deepEqual(
      client.messages.map((m) => m.id),
      [m1, m2],
      'from the index, in order, without the acked one',
    );
    assert.ok((await hotReads()) > hotBefore, 'the resume was served by the hot index');
    client.ack([m1, m2]);
    await eventually(() => store.deviceState(s.app, 'ivy', 'phone'), {
      what: 'acks stored',
      until: (st) => [m1, m2].every((id) => st.acked.includes(id)),
      timeoutMs: 30_000,
      intervalMs: 100,
    });
    await client.close();

    const m3 = await send(3);
    await redis.flushall();
    const m4 = await send(4);
    assert.equal(await redis.exists(index), 0, 'no writer recreated the index');
    client = await connect();
    await client.waitFor(2);
    await new Promise((r) => setTimeout(r, 500)); // nothing else comes
    assert.deepEqual(
      client.messages.map((m) => m.id),
      [m3, m4],
      'after FLUSHALL: everything stored, once, in order',
    );
    await eventually(async () => (await redis.exists(index)) === 1, { what: 'index reinstalled', timeoutMs: 5000, intervalMs: 100 });
  });
});
