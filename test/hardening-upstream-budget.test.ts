import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { topicNames } from '../protocol/topics.js';
import { decodeRecord } from '../schemas/registry.js';
import type { Ack, Presence, Upstream } from '../schemas/types.js';
import { connectClient, startStack, wsOf, type TestClient, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { topicReader } from './support/topicReader.js';

/**
 * Issue 12 #13: the pusher's upstream, acks and presence each have their own
 * byte-bounded publisher, and produce requests stay under the broker's limit,
 * so one client's burst of large upstream frames cannot fail the others' records.
 */
describe('upstream byte budget', () => {
  const stacks: TestStack[] = [];
  const reader = topicReader('hardening-upstream');
  after(async () => {
    await reader.close();
    await Promise.all(stacks.map((s) => s.stop()));
  });

  const follow = async (s: TestStack) => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    return {
      upstream: await reader.follow<Upstream>(topics.upstream, (v, h) => decodeRecord('Upstream', v, h)),
      presence: await reader.follow<Presence>(topics.presence, (v, h) => decodeRecord('Presence', v, h)),
      acks: await reader.follow<Ack>(topics.acks, (v, h) => decodeRecord('Ack', v, h)),
    };
  };
  const client = async (s: TestStack, user: string) => connectClient(wsOf(s.pushers[0]!.url), (await s.token(user, 'd')).token);
  // ~60 KB of JSON, under the pusher's 64 KiB frame limit.
  const bigFrame = (i: number) => JSON.stringify({ type: 'upstream', payload: { i, blob: 'u'.repeat(60_000) } });
  const errors = (c: TestClient, code: string) => c.frames.filter((f) => f.type === 'error' && f.code === code).length;

  test(
    "20+ large upstream frames from each of three clients: another client's upstream, ack and presence still reach Kafka",
    { timeout: 120_000 },
    async () => {
      // Room for the whole flood (a burst of 20 frames of ~60 KB from each of three clients, ~3.6 MB): what
      // is tested here is that the flood's produce requests do not take others' upstream, acks and presence down.
      const s = await startStack({ env: { PUSHER_UPSTREAM_QUEUE_BYTES: String(16 * 1024 * 1024) } });
      stacks.push(s);
      const seen = await follow(s);
      // Three flooding clients.
      const floods = await Promise.all(['flood1', 'flood2', 'flood3'].map((u) => client(s, u)));
      const bob = await client(s, 'bob');
      const sent = await s.send({ to: { users: ['bob'] }, payload: 'ack me' });
      await bob.waitFor(1);

      // Interleaved with the flood, so bob's records share produce requests with it.
      let carolConnecting: Promise<TestClient> | undefined;
      for (let i = 0; i < 25; i++) {
        for (const f of floods) f.ws.send(bigFrame(i));
        if (i < 15) bob.ws.send(JSON.stringify({ type: 'upstream', payload: { from: 'bob', i } }));
        if (i === 5) bob.ack([sent.body.id]);
        if (i === 10) carolConnecting = client(s, 'carol'); // presence ONLINE, published during the flood
        await new Promise((r) => setImmediate(r));
      }
      const carol = await carolConnecting!;

      await eventually(() => seen.upstream.filter((u) => u.user === 'bob').length >= 15, {
        timeoutMs: 20_000,
        what: "all 15 of bob's upstream frames on Kafka",
      });
      // The old shared publisher failed whole produce requests (a partition's batch over the broker's
      // 1 MiB): every client with a record in them was told its upstream was lost.
      assert.equal(errors(bob, 'UPSTREAM_UNAVAILABLE'), 0, "bob's upstream was never refused");
      await eventually(() => seen.acks.some((a) => a.user === 'bob' && a.ids.includes(sent.body.id)), { timeoutMs: 20_000, what: "bob's ack on Kafka" });
      await eventually(() => seen.presence.some((p) => p.user === 'carol' && p.state === 'ONLINE'), { timeoutMs: 20_000, what: "carol's presence on Kafka" });
      // The flood itself: what the rate limit let through (a burst of 20 each) is published, in pieces under the request limit.
      for (const f of floods) {
        const user = f === floods[0] ? 'flood1' : f === floods[1] ? 'flood2' : 'flood3';
        await eventually(
          () => seen.upstream.filter((u) => u.user === user).length + errors(f, 'UPSTREAM_RATE_LIMITED') + errors(f, 'UPSTREAM_BACKLOG') === 25,
          {
            timeoutMs: 40_000,
            what: `every frame of ${user} published or refused (rate, backlog)`,
          },
        );
        assert.ok(seen.upstream.filter((u) => u.user === user).length >= 20);
      }
      assert.equal(
        [...floods, bob].reduce((n, c) => n + errors(c, 'UPSTREAM_UNAVAILABLE'), 0),
        0,
        'no produce failed',
      );
      await Promise.all([...floods, bob, carol].map((c) => c.close()));
    },
  );

  test(
    "past the node's upstream byte budget a frame is refused with UPSTREAM_BACKLOG; acks and presence keep their own budget",
    { timeout: 120_000 },
    async () => {
      const s = await startStack({ env: { PUSHER_UPSTREAM_QUEUE_BYTES: String(128 * 1024) } });
      stacks.push(s);
      const seen = await follow(s);
      const flood = await client(s, 'flood');
      const bob = await client(s, 'bob');
      const sent = await s.send({ to: { users: ['bob'] }, payload: 'ack me' });
      await bob.waitFor(1);

      for (let i = 0; i < 20; i++) flood.ws.send(bigFrame(i));
      bob.ack([sent.body.id]);
      const carol = await client(s, 'carol');
      await eventually(() => errors(flood, 'UPSTREAM_BACKLOG') > 0, { timeoutMs: 20_000, what: 'an UPSTREAM_BACKLOG error frame' });
      const backlog = flood.frames.find((f) => f.type === 'error' && f.code === 'UPSTREAM_BACKLOG');
      assert.match(backlog.message, /resend/);
      await eventually(() => seen.acks.some((a) => a.user === 'bob' && a.ids.includes(sent.body.id)), { timeoutMs: 20_000, what: "bob's ack on Kafka" });
      await eventually(() => seen.presence.some((p) => p.user === 'carol' && p.state === 'ONLINE'), { timeoutMs: 20_000, what: "carol's presence on Kafka" });
      // Every frame is either published or refused with a reason: nothing is lost silently.
      await eventually(
        () => seen.upstream.filter((u) => u.user === 'flood').length + errors(flood, 'UPSTREAM_BACKLOG') + errors(flood, 'UPSTREAM_RATE_LIMITED') === 20,
        { timeoutMs: 20_000, what: 'every flood frame accounted for' },
      );
      // Once the queue drains, upstream is taken again.
      bob.ws.send(JSON.stringify({ type: 'upstream', payload: { from: 'bob', after: true } }));
      await eventually(() => seen.upstream.some((u) => u.user === 'bob'), { timeoutMs: 20_000, what: "bob's upstream after the backlog" });
      await Promise.all([flood, bob, carol].map((c) => c.close()));
    },
  );
});
