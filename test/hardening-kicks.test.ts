import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createAppStore } from '../store/apps.js';
import { stack as infra } from './support/env.js';
import { connectClient, startStack, type TestClient, type TestStack, wsOf } from './support/stack.js';
import { eventually } from './support/eventually.js';

const kick = (s: TestStack, user: string, body: unknown, apiKey = s.apiKey) =>
  fetch(`${s.collector.url}/v1/users/${user}/kick`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify(body),
  }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

/** Proves a socket (and its pusher) still works: a `ping` frame is answered by a `pong`. */
async function pingPong(c: TestClient): Promise<void> {
  const before = c.frames.filter((f) => f.type === 'pong').length;
  c.ws.send(JSON.stringify({ type: 'ping' }));
  await eventually(() => c.frames.filter((f) => f.type === 'pong').length > before, { what: 'pong', timeoutMs: 5000 });
}

describe('kicks cannot take a pusher down, and stay within their stack', () => {
  let s: TestStack;
  let other: TestStack;
  let redis: Redis;
  before(async () => {
    // Two stacks on one Redis, each with its own REDIS_KEY_PREFIX; no dispatcher needed for kicks.
    [s, other] = await Promise.all([startStack({ dispatchers: 0 }), startStack({ dispatchers: 0 })]);
    redis = new Redis(infra.redisUrl, { lazyConnect: true });
    await redis.connect();
  });
  after(async () => {
    redis?.disconnect();
    await Promise.all([s?.stop(), other?.stop()]);
  });

  test('a kick reason of 62 "é" (124 bytes) closes with a reason cut to 123 bytes; the pusher and its other sockets live on', { timeout: 30_000 }, async () => {
    const bystander = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('bystander', 'phone')).token);
    const victim = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('victim', 'phone')).token);
    const reason = 'é'.repeat(62);
    const res = await kick(s, 'victim', { reason });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    const closed = await victim.closed;
    assert.equal(closed.code, 4009);
    assert.deepEqual(
      victim.frames.find((f) => f.type === 'kick'),
      { type: 'kick', reason },
      'the kick frame carries the whole reason',
    );
    assert.ok(Buffer.byteLength(closed.reason) <= 123, `close reason is ${Buffer.byteLength(closed.reason)} bytes`);
    assert.equal(closed.reason, 'é'.repeat(61), 'cut on a character boundary');
    await pingPong(bystander);
    assert.equal(s.pushers[0]!.proc.exitCode, null, 'the pusher is still running');
    await bystander.close();
  });

  test('a reason over 200 bytes is refused with 400 naming the field, even when it is under 200 characters', { timeout: 30_000 }, async () => {
    const c = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('keeper', 'phone')).token);
    const res = await kick(s, 'keeper', { reason: 'é'.repeat(101) });
    assert.equal(res.status, 400);
    assert.equal(res.body.error.code, 'INVALID_REQUEST');
    assert.match(res.body.error.message, /reason/);
    assert.deepEqual(res.body.error.details, { field: 'reason' });
    assert.equal((await kick(s, 'keeper', { reason: 'x'.repeat(200) })).status, 202, '200 ASCII characters are still accepted');
    assert.equal((await c.closed).code, 4009);
  });

  test('whatever is published on the kick channel, the pusher ignores or applies it without dying', { timeout: 30_000 }, async () => {
    const bystander = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('bystander2', 'phone')).token);
    const victim = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('victim2', 'phone')).token);
    const channel = `${s.env.REDIS_KEY_PREFIX}push:kicks`;
    for (const text of ['not json', 'null', '42', '{"app":1}', JSON.stringify({ app: s.app, user: 'bystander2', reason: 'r', device: 7 })]) {
      await redis.publish(channel, text);
    }
    // Published straight to Redis, past the API's check: a 10,000 character reason.
    const reason = '€'.repeat(10_000);
    assert.equal(await redis.publish(channel, JSON.stringify({ app: s.app, user: 'victim2', reason })), 1, 'one pusher listens on the prefixed channel');
    const closed = await victim.closed;
    assert.equal(closed.code, 4009);
    assert.equal(closed.reason, '€'.repeat(41), '123 bytes of 3-byte characters');
    await pingPong(bystander);
    assert.equal(s.pushers[0]!.proc.exitCode, null, 'the pusher is still running');
    await bystander.close();
  });

  test("one stack's kick does not reach another stack's users on the same Redis, even with the same app id", { timeout: 30_000 }, async () => {
    // The other stack gets an app with this stack's id and key, so only the channel keeps them apart.
    await createAppStore({ db: other.mongo.db(other.env.MONGO_DB) }).upsert({
      id: s.app,
      apiKeys: [s.apiKey],
      allowedOrigins: ['*'],
      deviceMode: 'coexist',
      limits: {},
      openGroups: true,
    });
    const otherToken = async (device: string) => {
      const res = await fetch(`${other.auth.url}/v1/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'shared', deviceId: device }),
      });
      assert.equal(res.status, 200);
      return ((await res.json()) as { token: string }).token;
    };
    const mine = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('shared', 'phone')).token);
    const theirs = await connectClient(wsOf(other.pushers[0]!.url), await otherToken('phone'));
    const theirMarker = await connectClient(wsOf(other.pushers[0]!.url), await otherToken('marker'));

    assert.equal((await kick(s, 'shared', { reason: 'only here' })).status, 202);
    assert.equal((await mine.closed).code, 4009);
    // A later kick in the other stack, on the same subscriber connection of its pusher: once
    // it has been applied, the first kick would have been too, had that pusher received it.
    assert.equal((await kick(other, 'shared', { deviceId: 'marker', reason: 'marker' }, s.apiKey)).status, 202);
    assert.equal((await theirMarker.closed).code, 4009);
    assert.equal(
      theirs.frames.some((f) => f.type === 'kick'),
      false,
      'no kick frame from the other stack',
    );
    await pingPong(theirs);
    await theirs.close();
  });
});
