import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPrivateRedis } from '../infra/stack.js';
import { connectClient, receiveAndAck, startStack, wsOf, type TestClient, type TestStack } from './support/stack.js';
import { submitNumbered } from './support/faultClients.js';

/**
 * Redis restarted without persistence loses every route and the node registry.
 * Until a pusher has registered its boot and rewritten its routes, the
 * dispatcher finds no route for its connected devices and leaves their
 * persistent messages in the store. A device that stays connected must still
 * get them (durability-faults lost them until the device reconnected).
 */
describe('a Redis restart under connected devices', () => {
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  let s: TestStack;
  let client: TestClient | undefined;

  before(async () => {
    redis = await startPrivateRedis();
    s = await startStack({ pushers: 1, env: { REDIS_URL: `redis://127.0.0.1:${redis.port}` } });
  });
  after(async () => {
    await client?.close();
    await s?.stop().catch(() => undefined);
    await redis?.dispose();
  });

  test('persistent messages routed while the routes were gone reach the still-connected device', { timeout: 90_000 }, async () => {
    client = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('ruth', 'phone')).token);
    const got = new Set<string>();
    receiveAndAck(client, got);
    const send = (n: number) => submitNumbered(s, 'ruth', n, 'r');
    const first = await send(0);
    await client.waitFor(1);
    assert.ok(got.has(first));

    await redis.restart();
    // Sent at once: the pusher's next heartbeat (which registers its boot) is seconds away.
    const ids = [await send(1), await send(2), await send(3)];
    await client.waitFor(4, 30_000).catch((err: Error) => {
      throw new Error(`${err.message}; got ${JSON.stringify([...got])}, sent ${JSON.stringify(ids)}\npusher:\n${s.pushers[0]!.output().slice(-2000)}`);
    });
    for (const id of ids) assert.ok(got.has(id), `${id} reached the device`);
    assert.equal(client.ws.readyState, client.ws.OPEN, 'on the same connection');
  });
});
