import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from './support/eventually.js';
import { startSending } from './support/sender.js';
import { createDeliveryStore } from '../store/deliveryStore.js';
import { assertOnlyMarker, connectClient, startStack, type TestClient, type TestStack, receiveAndAck, wsOf } from './support/stack.js';

describe('several pushers and dispatchers', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ pushers: 2, dispatchers: 2 });
  });
  after(async () => {
    await s?.stop();
  });

  test('two devices of one user both receive; each acks on its own', { timeout: 30_000 }, async () => {
    const phone = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('erin', 'phone')).token);
    const laptop = await connectClient(wsOf(s.pushers[1]!.url), (await s.token('erin', 'laptop')).token);
    const r = await s.send({ to: { users: ['erin'] }, payload: 'both' });
    await Promise.all([phone.waitFor(1), laptop.waitFor(1)]);
    assert.equal(phone.messages[0]!.id, r.body.id);
    assert.equal(laptop.messages[0]!.id, r.body.id);
    phone.ack([r.body.id]);
    const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
    await eventually(async () => (await store.deviceState(s.app, 'erin', 'phone')).acked.includes(r.body.id), { what: 'phone ack stored' });
    await phone.close();
    await laptop.close();
    const phone2 = await connectClient(wsOf(s.pushers[1]!.url), (await s.token('erin', 'phone')).token);
    const laptop2 = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('erin', 'laptop')).token);
    await laptop2.waitFor(1);
    assert.equal(laptop2.messages[0]!.id, r.body.id, 'the laptop never acked: it gets the message again');
    const marker = await s.send({ to: { users: ['erin'] }, payload: 'marker' });
    await phone2.waitFor(1);
    assert.equal(phone2.messages[0]!.id, marker.body.id, 'the phone acked: it does not');
    await Promise.all([phone2.close(), laptop2.close()]);
  });

  test('the token lists every live pusher, the one the user last used first', { timeout: 30_000 }, async () => {
    const urls = s.pushers.map((p) => wsOf(p.url));
    const first = await s.token('nora', 'phone');
    assert.deepEqual([...first.nodes].sort(), [...urls].sort());
    const c = await connectClient(urls[1]!, first.token);
    // The node records "last used" just after the handshake, without telling the client.
    await eventually(async () => (await s.token('nora', 'phone')).nodes[0] === urls[1], { what: 'last-used node listed first' });
    const again = await s.token('nora', 'phone');
    assert.deepEqual([...again.nodes].sort(), [...urls].sort());
    await c.close();
  });

  test('transient messages reach online users only, never later', { timeout: 30_000 }, async () => {
    const online = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('frank', 'phone')).token);
    const live = await s.send({ to: { users: ['frank', 'gina'] }, payload: 'typing', persistent: false });
    await online.waitFor(1);
    assert.equal(online.messages[0]!.id, live.body.id);
    assert.equal(online.messages[0]!.persistent, false);
    const gina = await connectClient(wsOf(s.pushers[1]!.url), (await s.token('gina', 'phone')).token);
    await assertOnlyMarker(s, gina, 'gina');
    await Promise.all([online.close(), gina.close()]);
  });

  test('1,000 messages to 100 users over both pushers all arrive, in order per user', { timeout: 90_000 }, async () => {
    const users = Array.from({ length: 100 }, (_, i) => `bulk${i}`);
    const clients = new Map<string, TestClient>();
    await Promise.all(
      users.map(async (u, i) => {
        const { token } = await s.token(u, 'd1');
        clients.set(u, await connectClient(wsOf(s.pushers[i % 2]!.url), token));
      }),
    );
    const sent = new Map<string, string[]>(users.map((u) => [u, []]));
    for (let round = 0; round < 10; round++) {
      const results = await Promise.all(
        users.map(async (u) => {
          const r = await s.send({ to: { users: [u] }, payload: { round } });
          assert.equal(r.status, 202, JSON.stringify(r.body));
          return [u, r.body.id as string] as const;
        }),
      );
      for (const [u, id] of results) sent.get(u)!.push(id);
    }
    await Promise.all(users.map((u) => clients.get(u)!.waitFor(10, 60_000)));
    for (const u of users) {
      const got = clients.get(u)!.messages.map((m) => m.id);
      assert.deepEqual(got, sent.get(u), `order for ${u}`);
      assert.deepEqual(
        clients.get(u)!.messages.map((m) => m.payload.round),
        [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
      );
    }
    await Promise.all([...clients.values()].map((c) => c.close()));
  });

  test('a pusher killed with SIGKILL mid-stream: its clients reconnect to the other and miss nothing', { timeout: 90_000 }, async () => {
    const victim = await s.startPusher('victim');
    const survivor = s.pushers[0]!;
    const users = Array.from({ length: 20 }, (_, i) => `kill${i}`);
    const received = new Map<string, Set<string>>(users.map((u) => [u, new Set()]));
    const collect = (u: string, c: TestClient) => receiveAndAck(c, received.get(u)!);
    const first = await Promise.all(
      users.map(async (u) => {
        const c = await connectClient(wsOf(victim.url), (await s.token(u, 'd')).token);
        collect(u, c);
        return c;
      }),
    );
    const sender = startSending(s, users, 400);
    const receivedCount = () => [...received.values()].reduce((n, ids) => n + ids.size, 0);
    await eventually(() => receivedCount() >= 20, { what: 'first deliveries before the kill', timeoutMs: 20_000, intervalMs: 20 });
    await victim.stop('SIGKILL');
    await Promise.all(first.map((c) => c.closed));
    // Reconnect each client to the surviving node, as the SDK would with its node list.
    const second = await Promise.all(
      users.map(async (u) => {
        const c = await connectClient(wsOf(survivor.url), (await s.token(u, 'd')).token);
        collect(u, c);
        return c;
      }),
    );
    const sentAtReconnect = sender.count();
    await eventually(() => sender.count() >= sentAtReconnect + 40, { what: 'messages sent after the reconnect', timeoutMs: 20_000, intervalMs: 20 });
    await sender.stop();
    const total = sender.count();
    assert.ok(total > 20, `sent ${total}`);
    await sender.assertReceived(received, { what: 'every sent message received', timeoutMs: 30_000, intervalMs: 20 });
    await Promise.all(second.map((c) => c.close()));
    s.pushers.splice(s.pushers.indexOf(victim), 1);
  });
});
