import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { connectClient, OPERATOR_AUTH, startStack, wsOf, type TestClient, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { stack as infra } from './support/env.js';

/**
 * Issue 12 #18 (dashboard part): broadcast tasks that will never progress are
 * not shown "running 0/0" forever. The status API (what the dashboard draws)
 * shows a task whose state Redis lost (an earlier stack, a Redis restart) as
 * unknown, one whose message expired before it was delivered as expired, one
 * whose pusher restarted under the same node id as done (its share is never
 * resumed), and a task with no one to reach as done at once.
 */

interface ShownTask {
  id: string;
  state: string;
  recordedState?: string;
  nodes: { nodeId: string; finished: boolean; missed: boolean }[];
  note?: string;
  totals: { targeted: number; written: number };
}

describe('broadcast tasks on the dashboard', () => {
  let s: TestStack;
  let redis: Redis;
  before(async () => {
    // No dispatcher yet: tasks are created by the collector and nobody routes them.
    s = await startStack({ pushers: 1, dispatchers: 0 });
    redis = new Redis(infra.redisUrl, { keyPrefix: s.env.REDIS_KEY_PREFIX, lazyConnect: true });
  });
  after(async () => {
    redis?.disconnect();
    await s?.stop();
  });

  const tasksOf = async (): Promise<{ counts: Record<string, number>; recent: ShownTask[] }> => {
    const res = await fetch(`${s.admin.url}/v1/admin/status`, { headers: { authorization: OPERATOR_AUTH } });
    assert.equal(res.status, 200);
    return ((await res.json()) as { tasks: { counts: Record<string, number>; recent: ShownTask[] } }).tasks;
  };
  const broadcast = async (body: Record<string, unknown>) => {
    const sent = await s.send({ to: { all: true }, payload: 'news', persistent: false, ...body });
    assert.equal(sent.status, 202, JSON.stringify(sent.body));
    return sent.body.taskId as string;
  };

  test('a task whose state Redis lost is unknown, one whose message expired undelivered is expired; neither is running', { timeout: 60_000 }, async () => {
    const lost = await broadcast({});
    const expiring = await broadcast({ ttlSeconds: 1 });
    // Redis restarted without its data (it runs without persistence), as it does between two `npm start`s.
    assert.equal(await redis.del(`push:task:${lost}`, `push:task:${lost}:nodes`), 1);
    // No dispatcher runs, so neither task is ever routed; the admin service shows them.
    const shown = await eventually(
      async () => {
        const { recent, counts } = await tasksOf();
        const a = recent.find((t) => t.id === lost);
        const b = recent.find((t) => t.id === expiring);
        return a?.state === 'unknown' && b?.state === 'expired' ? { a, b, counts } : undefined;
      },
      { timeoutMs: 15_000, what: 'the lost task shown unknown and the expired one expired' },
    );
    assert.equal(shown.a.recordedState, 'running');
    assert.match(shown.a.note ?? '', /state is gone from Redis/);
    assert.deepEqual(shown.a.totals, { targeted: 0, written: 0, acked: 0 });
    assert.equal(shown.b.recordedState, 'running');
    assert.match(shown.b.note ?? '', /message expired at .*nothing more will be delivered/);
    assert.equal(shown.counts.running ?? 0, 0, 'nothing counted as running');
    assert.equal(shown.counts.unknown, 1);
    assert.equal(shown.counts.expired, 1);
  });

  test('a broadcast with no one to reach (an empty group) is done at once, 0/0', { timeout: 60_000 }, async () => {
    await s.startDispatcher();
    const sent = await s.send({ to: { group: 'nobody-subscribed' }, payload: 'hello?', persistent: false });
    assert.equal(sent.status, 202);
    const taskId = sent.body.taskId as string;
    const done = await eventually(async () => (await tasksOf()).recent.find((t) => t.id === taskId && t.state === 'done'), {
      timeoutMs: 10_000,
      what: 'the empty-group task done',
    });
    assert.deepEqual(done.totals, { targeted: 0, written: 0, acked: 0 });
    assert.equal(done.recordedState, undefined);
  });

  test('a task whose pusher restarted under the same node id before finishing its share is done, not running', { timeout: 90_000 }, async () => {
    const nodeId = `${s.env.KAFKA_TOPIC_PREFIX!.replace(/\.$/, '')}-p1`;
    const clients: TestClient[] = [];
    for (let i = 0; i < 5; i++) clients.push(await connectClient(wsOf(s.pushers[0]!.url), (await s.token(`reader${i}`, 'd')).token));
    // 5 connections at 1 per second: the node is still busy when it goes away.
    const taskId = await broadcast({ ratePerSecond: 1 });
    await eventually(async () => (await tasksOf()).recent.find((t) => t.id === taskId && t.totals.written >= 1 && t.state === 'running'), {
      timeoutMs: 15_000,
      what: 'the task running on the node',
    });
    // The node dies mid-task and comes back under the same id, as `npm start` brings node-8090 back.
    assert.equal(await s.pushers[0]!.stop('SIGKILL'), 'SIGKILL');
    await s.startPusher('p1');
    const shown = await eventually(async () => (await tasksOf()).recent.find((t) => t.id === taskId && t.state === 'done'), {
      timeoutMs: 15_000,
      what: 'the task shown done once its node restarted',
    });
    assert.equal(shown.recordedState, 'running');
    assert.match(shown.note ?? '', new RegExp(`${nodeId} restarted before finishing its share`));
    assert.deepEqual(
      shown.nodes.map((n) => [n.nodeId, n.finished, n.missed]),
      [[nodeId, false, false]],
      'by node id alone the node looks live and busy',
    );
    assert.ok(shown.totals.written >= 1 && shown.totals.written < 5, `progress kept as it was: ${shown.totals.written}/5`);
    await Promise.all(clients.map((c) => c.close()));
  });
});
