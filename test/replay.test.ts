import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAppStore } from '../store/apps.js';
import { createDeliveryStore } from '../store/deliveryStore.js';
import { Redis } from 'ioredis';
import { pino } from 'pino';
import { createKafka, createProducer } from '../platform/kafka/kafka.js';
import { topicNames } from '../protocol/topics.js';
import { encodeRecord } from '../schemas/registry.js';
import { stack as infra } from './support/env.js';
import { eventually } from './support/eventually.js';
import { OPERATOR_AUTH, adminCall, connectClient, startStack, wsOf, type TestClient, type TestStack } from './support/stack.js';

const admin = adminCall;

/** The replay once `done(replay)`; bounded. */
const waitReplay = (s: TestStack, id: string, done: (r: any) => boolean, timeoutMs = 60_000): Promise<any> =>
  eventually(async () => (await admin(s, `/v1/admin/replays/${id}`)).body, { what: `replay ${id}`, until: done, timeoutMs, intervalMs: 100 });

const ids = (c: TestClient) => c.messages.map((m) => m.id);

describe('replay of push.ingest', () => {
  let s: TestStack;
  before(async () => {
    // Long heartbeats keep routes from lapsing on a loaded machine (3 heartbeats).
    s = await startStack({ env: { PUSHER_HEARTBEAT_MS: '10000' } });
  });
  let redis: Redis | undefined;
  after(async () => {
    redis?.disconnect();
    await s?.stop();
  });

  test('after clearing delivery state: exactly the range arrives, once, acked ones are not resent; dry run counts', { timeout: 120_000 }, async () => {
    const db = s.mongo.db(s.env.MONGO_DB);
    // With the stack's Redis: forgetting deliveries drops the pushers' hot indexes of them, as any deleting writer must.
    redis = new Redis(infra.redisUrl, { keyPrefix: s.env.REDIS_KEY_PREFIX });
    const store = createDeliveryStore(db, { redis });
    const otherApp = `${s.app}-b`;
    await createAppStore({ db }).upsert({
      id: otherApp,
      apiKeys: [`${s.apiKey}-b`],
      allowedOrigins: ['*'],
      deviceMode: 'coexist',
      limits: {},
      openGroups: true,
    });
    const send = async (users: string[], n: string, extra: Record<string, unknown> = {}, apiKey?: string) => {
      const r = await s.send({ to: { users }, payload: { n }, persistent: true, ttlSeconds: 3600, ...extra }, apiKey ? { apiKey } : {});
      assert.equal(r.status, 202, JSON.stringify(r.body));
      return r.body.id as string;
    };

    const alice = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('alice', 'phone')).token);
    const pre = await send(['alice', 'bob'], 'pre');
    await alice.waitFor(1);
    await new Promise((r) => setTimeout(r, 20)); // Kafka timestamps have millisecond resolution: keep the edges apart
    const from = Date.now();
    const r1 = await send(['alice', 'bob'], 'r1');
    const r2 = await send(['alice', 'bob'], 'r2');
    const r3 = await send(['alice', 'bob'], 'r3');
    await send(['alice'], 'transient', { persistent: false });
    await send(['dave'], 'other-app', {}, `${s.apiKey}-b`);
    await alice.waitFor(5);
    await new Promise((r) => setTimeout(r, 20));
    const to = Date.now();
    await new Promise((r) => setTimeout(r, 20));
    const post = await send(['alice', 'bob'], 'post');
    await alice.waitFor(6);
    // Alice reads everything but acknowledges r3 never.
    alice.ack([pre, r1, r2, post]);
    await eventually(() => store.deviceState(s.app, 'alice', 'phone'), {
      what: 'alice acks stored',
      until: (st) => [pre, r1, r2, post].every((i) => st.acked.includes(i)),
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    await alice.close();

    // Lost delivery state: the inboxes of alice and bob are gone.
    for (const u of ['alice', 'bob']) await store.forgetDeliveries(s.app, u);

    const dry = await admin(s, '/v1/admin/replays', { topic: 'push.ingest', from: new Date(from).toISOString(), to, dryRun: true });
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.dryRun, true);
    assert.deepEqual(dry.body.apps, { [s.app]: 6, [otherApp]: 1 });
    assert.equal(dry.body.total, 7);
    assert.equal(dry.body.partitions.length, 4);
    assert.equal(
      dry.body.partitions.reduce((a: number, p: any) => a + p.matched, 0),
      7,
    );
    assert.equal(dry.body.skipped.transient, 1);
    const dryApp = await admin(s, '/v1/admin/replays', { topic: 'push.ingest', from, to, app: s.app, dryRun: true });
    assert.deepEqual([dryApp.body.apps, dryApp.body.total], [{ [s.app]: 6 }, 6]);
    const dryUser = await admin(s, '/v1/admin/replays', { topic: 'push.ingest', from, to, app: s.app, user: 'bob', dryRun: true });
    assert.equal(dryUser.body.total, 3);

    // Alice is back (her resume finds nothing: the inbox is gone) while the replay runs.
    const alice2 = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('alice', 'phone')).token);
    const started = await admin(s, '/v1/admin/replays', { topic: 'push.ingest', from, to, app: s.app, ratePerSecond: 1000 });
    assert.equal(started.status, 202, JSON.stringify(started.body));
    assert.equal(started.body.state, 'running');
    assert.equal(started.body.app, s.app);
    const done = await waitReplay(s, started.body.id, (r) => r.state !== 'running');
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.equal(done.progress.matched, 6);
    assert.equal(done.progress.replayed, 6);
    assert.ok(
      done.progress.partitions.every((p: any) => p.position === p.endOffset),
      JSON.stringify(done.progress),
    );
    const listed = await admin(s, '/v1/admin/replays');
    assert.equal(listed.body.replays[0].id, started.body.id);
    // The replay read with a group of its own, gone now; the live group never went back.
    const kafkaAdmin = createKafka({ clientId: 'replay-groups', brokers: infra.kafkaBrokers, logger: pino({ level: 'silent' }) }).admin();
    await kafkaAdmin.connect();
    try {
      const groups = (await kafkaAdmin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(s.env.KAFKA_TOPIC_PREFIX!));
      assert.ok(!groups.some((g) => g.includes('-replay-')), `replay groups left behind: ${groups.join(', ')}`);
      const live = topicNames(s.env.KAFKA_TOPIC_PREFIX);
      const ends = await kafkaAdmin.fetchTopicOffsets(live.ingest);
      await eventually(async () => (await kafkaAdmin.fetchOffsets({ groupId: live.groups.dispatcher, topics: [live.ingest] }))[0]!.partitions, {
        what: 'the live group to catch up with the copies',
        until: (ps) =>
          ps.every((p) => {
            const high = ends.find((e) => e.partition === p.partition)!.high;
            return p.offset === high || (p.offset === '-1' && high === '0');
          }),
        timeoutMs: 20_000,
        intervalMs: 100,
      });
    } finally {
      await kafkaAdmin.disconnect();
    }

    // A marker sent after the replay comes behind the replayed records (same key, same partition).
    const markerA = await send(['alice'], 'marker');
    await alice2.waitFor(2);
    assert.deepEqual(ids(alice2), [r3, markerA], 'alice gets the unacknowledged r3 once, not r1/r2');
    alice2.ack(ids(alice2));

    const bob = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('bob', 'laptop')).token);
    await bob.waitFor(3);
    const markerB = await send(['bob'], 'marker');
    await bob.waitFor(4);
    assert.deepEqual(ids(bob), [r1, r2, r3, markerB], 'bob gets exactly the range, in order, once');

    // The same range again, for alice only: nothing reaches her twice and her inbox holds each id once.
    await eventually(() => store.deviceState(s.app, 'alice', 'phone'), {
      what: 'alice acks stored',
      until: (st) => st.acked.includes(r3),
      timeoutMs: 20_000,
      intervalMs: 100,
    });
    const again = await admin(s, '/v1/admin/replays', { topic: 'push.ingest', from, to, app: s.app, user: 'alice' });
    assert.equal(again.status, 202);
    const againDone = await waitReplay(s, again.body.id, (r) => r.state !== 'running');
    assert.deepEqual([againDone.state, againDone.progress.replayed], ['done', 3]);
    const marker2 = await send(['alice'], 'marker-2');
    await alice2.waitFor(3);
    assert.deepEqual(ids(alice2), [r3, markerA, marker2]);
    const inboxIds = await store.deliveryIds(s.app, 'alice');
    assert.equal(new Set(inboxIds).size, inboxIds.length, `duplicate ids in the inbox: ${inboxIds.join(',')}`);
    assert.ok([r1, r2, r3].every((i) => inboxIds.includes(i)));
    await alice2.close();
    await bob.close();
  });

  test('stop halts a running replay; a finished one cannot be stopped; rate is bounded and measured', { timeout: 120_000 }, async (t) => {
    const users = Array.from({ length: 1000 }, (_, i) => `load-${i}`);
    const from = Date.now();
    const r = await s.send({ to: { users }, payload: { n: 'load' }, persistent: true, ttlSeconds: 3600 });
    assert.equal(r.status, 202);
    const to = Date.now();

    const slow = await admin(s, '/v1/admin/replays', { topic: 'push.ingest', from, to, app: s.app, ratePerSecond: 20 });
    assert.equal(slow.status, 202);
    const moving = await waitReplay(s, slow.body.id, (x) => x.progress.replayed > 0, 30_000);
    assert.equal(moving.state, 'running');
    const stopped = await admin(s, `/v1/admin/replays/${slow.body.id}/stop`, {});
    assert.equal(stopped.status, 200);
    assert.equal(stopped.body.state, 'stopped');
    const settled = stopped.body;
    // Nothing moves once stopped: read it again after a while.
    await new Promise((res) => setTimeout(res, 1500));
    const later = (await admin(s, `/v1/admin/replays/${slow.body.id}`)).body;
    assert.equal(later.state, 'stopped');
    assert.equal(later.progress.replayed, settled.progress.replayed);
    assert.ok(later.progress.replayed < 1000, `stopped replay still replayed ${later.progress.replayed}`);
    const again = await admin(s, `/v1/admin/replays/${slow.body.id}/stop`, {});
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, 'INVALID_TRANSITION');

    // A bounded rate: 1000 records at 500/s take about 2 s.
    const t0 = Date.now();
    const paced = await admin(s, '/v1/admin/replays', { topic: 'push.ingest', from, to, app: s.app, ratePerSecond: 500 });
    const pacedDone = await waitReplay(s, paced.body.id, (x) => x.state !== 'running');
    const pacedMs = Date.now() - t0;
    assert.equal(pacedDone.progress.replayed, 1000);
    assert.ok(pacedMs >= 1800, `1000 records at 500/s took only ${pacedMs} ms`);

    // Full speed, for the figure in the report.
    const t1 = Date.now();
    const fast = await admin(s, '/v1/admin/replays', { topic: 'push.ingest', from, to, app: s.app, ratePerSecond: 50_000 });
    const fastDone = await waitReplay(s, fast.body.id, (x) => x.state !== 'running');
    const fastMs = Date.now() - t1;
    assert.equal(fastDone.progress.replayed, 1000);
    t.diagnostic(`replay rate: 1000 records in ${fastMs} ms = ${Math.round((1000 / fastMs) * 1000)} records/s (request to done, including consumer join)`);
  });

  test('push.events replay re-runs records through the collector with their original ids: nothing twice', { timeout: 120_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const producer = createProducer(createKafka({ clientId: 'replay-events-test', brokers: infra.kafkaBrokers, logger: pino({ level: 'silent' }) }));
    await producer.connect();
    try {
      const event = (n: string) => {
        const e = encodeRecord('BusinessEvent', {
          app: s.app,
          to: { users: ['nia'], group: null, all: false },
          payload: JSON.stringify({ n }),
          persistent: true,
          ttlSeconds: 600,
          idempotencyKey: null,
          collapseKey: null,
          traceId: null,
        });
        return { key: 'nia', value: e.value, headers: e.headers };
      };
      const nia = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('nia', 'phone')).token);
      const from = Date.now();
      await producer.send({ topic: topics.events, messages: [event('e1'), event('e2')] });
      await nia.waitFor(2, 60_000);
      const to = Date.now();
      nia.ack(ids(nia));

      const dry = await admin(s, '/v1/admin/replays', { topic: 'push.events', from, to, dryRun: true });
      assert.deepEqual([dry.body.total, dry.body.apps], [2, { [s.app]: 2 }]);
      const started = await admin(s, '/v1/admin/replays', { topic: 'push.events', from, to, app: s.app });
      assert.equal(started.status, 202);
      const done = await waitReplay(s, started.body.id, (r) => r.state !== 'running');
      assert.deepEqual([done.state, done.progress.replayed], ['done', 2]);
      // The marker goes the same way (same key, same partition), behind the replayed copies.
      await producer.send({ topic: topics.events, messages: [event('marker')] });
      await nia.waitFor(3, 60_000);
      assert.deepEqual(
        nia.messages.map((m) => m.payload.n),
        ['e1', 'e2', 'marker'],
      );
      assert.equal(new Set(ids(nia)).size, 3);
      await nia.close();
    } finally {
      await producer.disconnect();
    }
  });

  test('bad requests get 400 INVALID_REQUEST naming the problem; unknown ids 404; no key 401', { timeout: 30_000 }, async () => {
    const now = Date.now();
    const cases: [unknown, RegExp][] = [
      [{ topic: 'push.ingest', from: now, to: now - 1000 }, /from must not be after to/],
      [{ topic: 'push.nope', from: now - 1000, to: now }, /topic must be one of/],
      [{ topic: 'push.ingest', from: 'yesterday', to: now }, /from must be an ISO-8601/],
      [{ topic: 'push.ingest', from: now - 1000, to: '2026-13-45T99:00:00Z' }, /to must be an ISO-8601/],
      [{ topic: 'push.ingest', to: now }, /from is required/],
      [{ topic: 'push.ingest', from: now - 30 * 86_400_000, to: now }, /range too large/],
      [{ topic: 'push.ingest', from: now + 60_000, to: now + 120_000 }, /from is in the future/],
      [{ topic: 'push.ingest', from: now - 1000, to: now, ratePerSecond: 0 }, /ratePerSecond must be an integer from 1 to 50000/],
      [{ topic: 'push.ingest', from: now - 1000, to: now, ratePerSecond: 50_001 }, /ratePerSecond/],
      [{ topic: 'push.events', from: now - 1000, to: now, user: 'u1' }, /user filters apply to push.ingest only/],
      [{ topic: 'push.ingest', from: now - 1000, to: now, dryRun: 'yes' }, /dryRun must be a boolean/],
      [{ topic: 'push.ingest', from: now - 1000, to: now, colour: 'red' }, /unknown field colour/],
      [[1, 2], /body must be a JSON object/],
    ];
    for (const [body, message] of cases) {
      const r = await admin(s, '/v1/admin/replays', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.body.error.code, 'INVALID_REQUEST');
      assert.match(r.body.error.message, message);
    }
    assert.equal((await admin(s, '/v1/admin/replays', { topic: 'push.ingest', from: now - 1000, to: now }, 'Bearer wrong')).status, 401);
    const missing = await admin(s, '/v1/admin/replays/01ARZ3NDEKTSV4RRFFQ69G5FAV');
    assert.deepEqual([missing.status, missing.body.error.code], [404, 'NOT_FOUND']);
    assert.equal((await admin(s, '/v1/admin/replays/not-an-id/stop', {})).status, 404);
  });
});

describe('replay across an admin restart', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ env: { PUSHER_HEARTBEAT_MS: '10000' } });
  });
  after(async () => {
    await s?.stop();
  });

  test('a replay whose admin process dies is continued by the next one from its saved positions', { timeout: 120_000 }, async () => {
    const users = Array.from({ length: 300 }, (_, i) => `tk-${i}`);
    const from = Date.now();
    assert.equal((await s.send({ to: { users }, payload: { n: 'takeover' }, persistent: true, ttlSeconds: 3600 })).status, 202);
    const to = Date.now();
    const call = async (path: string, body?: unknown) => {
      const res = await fetch(`${s.admin.url}${path}`, {
        method: body === undefined ? 'GET' : 'POST',
        headers: { authorization: OPERATOR_AUTH, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      return { status: res.status, body: (await res.json()) as any };
    };
    const started = await call('/v1/admin/replays', { topic: 'push.ingest', from, to, app: s.app, ratePerSecond: 40 });
    assert.equal(started.status, 202);
    const id = started.body.id as string;
    const poll = (ok: (r: any) => boolean, timeoutMs: number) =>
      eventually(async () => (await call(`/v1/admin/replays/${id}`)).body, { what: `replay ${id}`, until: ok, timeoutMs, intervalMs: 100 });
    const moving = await poll((r) => r.progress.replayed >= 40, 30_000);
    assert.equal(moving.state, 'running');
    await s.admin.stop('SIGKILL');
    // The next admin process takes the replay over once the dead one's lease expires.
    await s.startAdmin();
    const done = await poll((r) => r.state !== 'running', 90_000);
    assert.equal(done.state, 'done', JSON.stringify(done));
    assert.equal(done.progress.matched, 300);
    assert.equal(done.progress.replayed, 300);
    assert.ok(done.progress.partitions.every((p: any) => p.position === p.endOffset));
  });
});
