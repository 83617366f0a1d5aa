import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { Redis } from 'ioredis';
import { assertOnlyMarker, connectClient, startStack, type TestStack, wsOf } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { stack as infra } from './support/env.js';
import { createDeliveryStore } from '../store/deliveryStore.js';

const ID_ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
/** A well-formed message id that no message has. */
const inventedId = () => Array.from({ length: 26 }, () => ID_ALPHABET[randomInt(ID_ALPHABET.length)]).join('');

describe('hardening #5: acks of ids never delivered on the connection', () => {
  let s: TestStack;
  let redis: Redis;
  before(async () => {
    s = await startStack();
    redis = new Redis(infra.redisUrl, { lazyConnect: true });
    await redis.connect();
  });
  after(async () => {
    redis?.disconnect();
    await s?.stop();
  });

  test("thousands of invented ids create no Redis keys and close the socket; a real client's acks are honoured", { timeout: 60_000 }, async () => {
    const url = wsOf(s.pushers[0]!.url);
    const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
    const alice = await connectClient(url, (await s.token('alice', 'phone')).token);
    const real: string[] = [];
    for (let i = 0; i < 3; i++) real.push((await s.send({ to: { users: ['alice'] }, payload: { n: i } })).body.id as string);
    await alice.waitFor(3);

    const mallory = await connectClient(url, (await s.token('mallory', 'd')).token);
    // Someone else's real id is as foreign to this connection as an invented one.
    mallory.ack([real[0]!]);
    const invented = new Set<string>();
    for (let f = 0; f < 30; f++) {
      const ids = Array.from({ length: 500 }, inventedId);
      for (const id of ids) invented.add(id);
      mallory.ack(ids);
    }
    alice.ack(real);

    // Alice's acks are stored and traced; mallory's are nowhere.
    await eventually(
      async () => {
        const st = await store.deviceState(s.app, 'alice', 'phone');
        return real.every((id) => st.acked.includes(id));
      },
      { what: 'alice acks stored', timeoutMs: 15_000 },
    );
    const closed = await Promise.race([mallory.closed, new Promise<never>((_, rej) => setTimeout(() => rej(new Error('mallory not closed')), 10_000))]);
    assert.equal(closed.code, 4002, 'a flood of invented ids ends as too many bad frames');
    assert.ok(mallory.frames.some((f) => f.type === 'error' && f.code === 'BAD_FRAME' && /not delivered on this connection/.test(f.message)));
    assert.deepEqual((await store.deviceState(s.app, 'mallory', 'd')).acked, []);

    const traced = new Map<string, Record<string, string>>();
    await eventually(
      async () => {
        const fields = await redis.hgetall(`${s.env.REDIS_KEY_PREFIX}push:trace:${real[2]}`);
        return fields[`a:alice|phone`] ? fields : undefined;
      },
      { what: 'the ack in the trace record', timeoutMs: 10_000 },
    );
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${s.env.REDIS_KEY_PREFIX}push:trace:*`, 'COUNT', 1000);
      cursor = next;
      for (const key of keys) traced.set(key.slice(key.lastIndexOf(':') + 1), await redis.hgetall(key));
    } while (cursor !== '0');
    assert.deepEqual(
      [...traced.keys()].filter((id) => invented.has(id)),
      [],
      'no trace key for an invented id',
    );
    assert.deepEqual([...traced.keys()].sort(), [...real].sort(), 'trace keys exist only for the real messages');
    assert.ok(![...traced.values()].some((fields) => 'a:mallory|d' in fields), 'mallory annotated no trace');

    const metrics = await (await fetch(`${s.pushers[0]!.url}/metrics`)).text();
    const unknown = Number(/^push_ack_unknown_ids_total(?:{[^}]*})? (\d+)/m.exec(metrics)?.[1]);
    assert.ok(unknown > 1000, `unknown ack ids counted: ${unknown}`);

    // Honoured: nothing alice acked comes back when she reconnects.
    await alice.close();
    const again = await connectClient(url, (await s.token('alice', 'phone')).token);
    await assertOnlyMarker(s, again, 'alice');
    await again.close();
  });
});
