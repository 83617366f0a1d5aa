import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { stack as infra } from './support/env.js';
import { assertOnlyMarker, connectClient, startStack, type TestClient, type TestStack, wsOf } from './support/stack.js';
import { eventually } from './support/eventually.js';

const DAY = 86_400;
const MAX_TTL = 30 * DAY;

/** The collector's task API, with the app's API key (what a business system uses). */
const taskCall = (s: TestStack, path: string, method = 'GET') =>
  fetch(`${s.collector.url}/v1/tasks/${path}`, { method, headers: { authorization: `Bearer ${s.apiKey}` } }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as any,
  }));

async function connectMany(s: TestStack, prefix: string, n: number): Promise<TestClient[]> {
  const out: TestClient[] = [];
  for (let i = 0; i < n; i += 25) {
    out.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(25, n - i) }, async (_, j) => connectClient(wsOf(s.pushers[0]!.url), (await s.token(`${prefix}${i + j}`, 'd')).token)),
      )),
    );
  }
  return out;
}

const got = (c: TestClient, id: string) => c.messages.some((m) => m.id === id);

/** A gauge of the pusher's /metrics (the first series of `name` whose labels include `label`), or undefined when absent. */
async function gauge(s: TestStack, name: string, label = ''): Promise<number | undefined> {
  const text = await (await fetch(`${s.pushers[0]!.url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(label));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
}

describe('broadcast tasks: a stop outlives its message, finished tasks let go of their state', () => {
  let s: TestStack;
  let redis: Redis;
  before(async () => {
    s = await startStack({ pushers: 1, dispatchers: 1 });
    redis = new Redis(infra.redisUrl, { keyPrefix: s.env.REDIS_KEY_PREFIX, lazyConnect: true });
    await redis.connect();
  });
  after(async () => {
    redis?.disconnect();
    await s?.stop();
  });

  test('a stopped 30-day persistent broadcast stays stopped for 30 days, and even when Redis lost the stop', { timeout: 60_000 }, async () => {
    const clients = await connectMany(s, 'early', 5);
    const r = await s.send({ to: { all: true }, payload: 'recall me', ttlSeconds: MAX_TTL, ratePerSecond: 1 });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await eventually(() => clients.some((c) => got(c, r.body.id)), { what: 'first delivery' });
    const stopped = await taskCall(s, `${r.body.taskId}/stop`, 'POST');
    assert.equal(stopped.status, 200, JSON.stringify(stopped.body));
    assert.equal(stopped.body.state, 'stopped');

    // The stop marker lives at least as long as the message (30 days), not 7 days.
    const ttl = await redis.ttl(`push:task:${r.body.taskId}`);
    assert.ok(ttl >= MAX_TTL - 60, `the stop marker expires in ${ttl} s, before the message (${MAX_TTL} s)`);
    assert.equal(await redis.hget(`push:task:${r.body.taskId}`, 'state'), 'stopped');
    // Its progress is kept a day for operators, not a week.
    const nodes = await redis.smembers(`push:task:${r.body.taskId}:nodes`);
    assert.ok(nodes.length >= 1);
    for (const key of [`push:task:${r.body.taskId}:nodes`, ...nodes.map((n) => `push:task:${r.body.taskId}:n:${n}`)]) {
      const t = await redis.ttl(key);
      assert.ok(t > 0 && t <= DAY, `${key} expires in ${t} s`);
    }

    const later = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('later', 'phone')).token);
    await assertOnlyMarker(s, later, 'later', { payload: 'marker 1', message: 'the stopped broadcast is not delivered on connect' });
    await later.close();

    // The hot state gone (Redis restarted without persistence, or it expired): the task
    // record in MongoDB still says stopped, and a device connecting now does not get it.
    await redis.del(`push:task:${r.body.taskId}`);
    const afterLoss = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('after-loss', 'phone')).token);
    await assertOnlyMarker(s, afterLoss, 'after-loss', { payload: 'marker 2', message: 'the stop survives the loss of its Redis copy' });
    await Promise.all([...clients, afterLoss].map((c) => c.close()));
  });

  test('a finished broadcast keeps its state only until its message expires (plus a day), its progress a day', { timeout: 60_000 }, async () => {
    const clients = await connectMany(s, 'done', 3);
    const r = await s.send({ to: { all: true }, payload: 'short', ttlSeconds: 600 });
    assert.equal(r.status, 202);
    await Promise.all(clients.map((c) => c.waitFor(1)));
    await eventually(async () => (await taskCall(s, r.body.taskId)).body.state === 'done', { what: 'task done' });
    const ttl = await redis.ttl(`push:task:${r.body.taskId}`);
    assert.ok(ttl > 0 && ttl <= 600 + DAY, `the state of a 10-minute message lives ${ttl} s`);
    const nodes = await redis.smembers(`push:task:${r.body.taskId}:nodes`);
    for (const key of [`push:task:${r.body.taskId}:nodes`, ...nodes.map((n) => `push:task:${r.body.taskId}:n:${n}`)]) {
      const t = await redis.ttl(key);
      assert.ok(t > 0 && t <= DAY, `${key} expires in ${t} s`);
    }
    const view = await taskCall(s, r.body.taskId);
    assert.equal(view.body.totals.written, 3, 'operators still see what it did');
    await Promise.all(clients.map((c) => c.close()));
  });

  test('a paused task holds one waiter and only the open connections it has yet to write, then lets go', { timeout: 90_000 }, async () => {
    const clients = await connectMany(s, 'paused', 60);
    const r = await s.send({ to: { all: true }, payload: 'paced', persistent: false, ratePerSecond: 10 });
    assert.equal(r.status, 202);
    await eventually(() => clients.filter((c) => got(c, r.body.id)).length >= 3, { what: 'task under way' });
    assert.equal((await taskCall(s, `${r.body.taskId}/pause`, 'POST')).body.state, 'paused');
    await eventually(async () => (await gauge(s, 'push_task_jobs', 'state="paused"')) === 1, { what: 'paused job' });
    // Half of the clients not written yet leave while the task is paused.
    const waiting = clients.filter((c) => !got(c, r.body.id));
    const leaving = waiting.slice(0, Math.floor(waiting.length / 2));
    await Promise.all(leaving.map((c) => c.close()));
    const staying = waiting.length - leaving.length;
    // Several poll rounds (500 ms each) later: one waiter, not one more per round; the
    // closed connections are no longer held.
    await eventually(async () => (await gauge(s, 'push_task_held_connections')) === staying, { what: `held connections down to ${staying}`, timeoutMs: 5000 });
    const pausedAt = Date.now();
    while (Date.now() - pausedAt < 2500) {
      const waiters = await gauge(s, 'push_task_waiters');
      assert.ok(waiters !== undefined && waiters <= 1, `waiters: ${waiters}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.equal((await taskCall(s, `${r.body.taskId}/resume`, 'POST')).body.state, 'running');
    const open = clients.filter((c) => !leaving.includes(c));
    await eventually(() => open.every((c) => got(c, r.body.id)), { what: 'every open client written after resume', timeoutMs: 30_000 });
    // Finished: nothing held, no waiter, no job.
    await eventually(
      async () =>
        (await gauge(s, 'push_task_held_connections')) === 0 &&
        (await gauge(s, 'push_task_waiters')) === 0 &&
        (await gauge(s, 'push_task_jobs', 'state="running"')) === 0,
      { what: 'task let go' },
    );
    await Promise.all(open.map((c) => c.close()));
  });
});
