import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertOnlyMarker, connectClient, startStack, type TestClient, type TestStack, wsOf } from './support/stack.js';
import { eventually } from './support/eventually.js';

/** Connects `n` clients (users prefix0..n-1), alternating over the stack's pushers, a bounded number at a time. */
async function connectMany(s: TestStack, prefix: string, n: number, concurrency = 100): Promise<TestClient[]> {
  const out: TestClient[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const i = next++;
        const { token } = await s.token(`${prefix}${i}`, 'd');
        out[i] = await connectClient(wsOf(s.pushers[i % s.pushers.length]!.url), token);
      }
    }),
  );
  return out;
}

const admin = (s: TestStack, path: string, method = 'GET', key = 'operator-key') =>
  fetch(`${s.admin.url}${path}`, { method, headers: { authorization: `Bearer ${key}` } }).then(async (r) => ({
    status: r.status,
    body: (await r.json()) as any,
  }));

const frameCount = (clients: TestClient[], id: string) => clients.reduce((n, c) => n + c.messages.filter((m) => m.id === id).length, 0);

describe('groups, broadcasts and tasks', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ pushers: 2, dispatchers: 1 });
  });
  after(async () => {
    await s?.stop();
  });

  test('a group message reaches exactly the subscribers on both pushers, once each; unsubscribe stops it', { timeout: 90_000 }, async () => {
    const clients = await connectMany(s, 'grp', 200);
    const subscribers = clients.filter((_, i) => i % 2 === 0);
    await Promise.all(
      subscribers.map(async (c) => {
        c.ws.send(JSON.stringify({ type: 'subscribe', group: 'news' }));
        await eventually(() => c.frames.some((f) => f.type === 'subscribed' && f.group === 'news'), { what: 'subscribed' });
      }),
    );
    const r = await s.send({ to: { group: 'news' }, payload: { headline: 'hi' }, persistent: false });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.match(r.body.taskId, /^[0-9A-Z]{26}$/);
    await Promise.all(subscribers.map((c) => c.waitFor(1, 30_000)));
    assert.equal(frameCount(subscribers, r.body.id), 100);
    const done = await eventually(
      async () => {
        const t = await admin(s, `/v1/tasks/${r.body.taskId}`);
        return t.body.state === 'done' ? t.body : undefined;
      },
      { what: 'group task done', timeoutMs: 15_000 },
    );
    assert.equal(done.totals.targeted, 100);
    assert.equal(done.totals.written, 100);
    assert.equal(
      frameCount(
        clients.filter((_, i) => i % 2 === 1),
        r.body.id,
      ),
      0,
      'non-subscribers got nothing',
    );

    for (const c of subscribers.slice(0, 50)) c.ws.send(JSON.stringify({ type: 'unsubscribe', group: 'news' }));
    await Promise.all(subscribers.slice(0, 50).map((c) => eventually(() => c.frames.some((f) => f.type === 'unsubscribed'), { what: 'unsubscribed' })));
    const r2 = await s.send({ to: { group: 'news' }, payload: { headline: 'second' }, persistent: false });
    await Promise.all(subscribers.slice(50).map((c) => c.waitFor(2, 30_000)));
    assert.equal(frameCount(subscribers.slice(50), r2.body.id), 50);
    assert.equal(frameCount(subscribers.slice(0, 50), r2.body.id), 0, 'unsubscribed clients got nothing');
    await Promise.all(clients.map((c) => c.close()));
  });

  test('a broadcast reaches all 500 clients; a persistent one reaches a later client once, within its TTL only', { timeout: 120_000 }, async () => {
    const clients = await connectMany(s, 'all', 500);
    const r = await s.send({ to: { all: true }, payload: { text: 'maintenance tonight' }, ttlSeconds: 3 });
    assert.equal(r.status, 202);
    await Promise.all(clients.map((c) => c.waitFor(1, 30_000)));
    assert.equal(frameCount(clients, r.body.id), 500);
    await Promise.all(clients.map((c) => c.close()));

    const { token } = await s.token('late-comer', 'phone');
    const late = await connectClient(wsOf(s.pushers[1]!.url), token);
    await late.waitFor(1);
    assert.equal(late.messages[0]!.id, r.body.id);
    late.ack([r.body.id]);
    await late.close();
    // Expiry is the thing under test here: wait past the 3 s TTL, then connect someone new.
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(late.messages[0]!.sentAt) + 3200 - Date.now())));
    const tooLate = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('too-late', 'phone')).token);
    await assertOnlyMarker(s, tooLate, 'too-late', { message: 'an expired broadcast is not delivered' });
    await tooLate.close();
  });

  test('a rate-limited broadcast to 2,000 clients keeps its rate, reports progress to done, pauses, resumes and stops', { timeout: 180_000 }, async () => {
    const clients = await connectMany(s, 'rate', 2000);
    const received: number[] = [];
    for (const c of clients) c.ws.on('message', () => received.push(Date.now()));
    const rate = 1000;
    const r = await s.send({ to: { all: true }, payload: 'paced', persistent: false, ratePerSecond: rate });
    assert.equal(r.status, 202);
    const samples: number[] = [];
    await eventually(
      async () => {
        const t = await admin(s, `/v1/tasks/${r.body.taskId}`);
        samples.push(t.body.totals.written);
        return t.body.state === 'done';
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'paced task done' },
    );
    assert.equal(frameCount(clients, r.body.id), 2000);
    assert.ok(
      samples.some((w) => w > 0 && w < 2000),
      `progress was reported along the way: ${samples.join(',')}`,
    );
    for (let i = 1; i < samples.length; i++) assert.ok(samples[i]! >= samples[i - 1]!, 'progress never goes back');
    const span = (Math.max(...received) - Math.min(...received)) / 1000;
    const observed = 1999 / span;
    assert.ok(Math.abs(observed - rate) / rate <= 0.2, `observed ${observed.toFixed(0)}/s against a limit of ${rate}/s`);

    // Pause and resume, then stop a slow one half way.
    const slow = await s.send({ to: { all: true }, payload: 'slow', persistent: false, ratePerSecond: 400 });
    await eventually(() => frameCount(clients, slow.body.id) >= 200, { what: 'slow task under way' });
    const paused = await admin(s, `/v1/tasks/${slow.body.taskId}/pause`, 'POST');
    assert.equal(paused.status, 200);
    assert.equal(paused.body.state, 'paused');
    const atPause = frameCount(clients, slow.body.id);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const pausedFor1s = frameCount(clients, slow.body.id);
    assert.ok(pausedFor1s - atPause <= 40, `at most one tick in flight after pause (${pausedFor1s - atPause})`);
    assert.equal((await admin(s, `/v1/tasks/${slow.body.taskId}/resume`, 'POST')).body.state, 'running');
    await eventually(() => frameCount(clients, slow.body.id) >= pausedFor1s + 200, { what: 'resumed' });
    const stopped = await admin(s, `/v1/tasks/${slow.body.taskId}/stop`, 'POST');
    assert.equal(stopped.body.state, 'stopped');
    const stopAckedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const oneSecondAfterStop = frameCount(clients, slow.body.id);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    assert.equal(frameCount(clients, slow.body.id), oneSecondAfterStop, 'nothing written later than 1 s after the stop');
    assert.ok(oneSecondAfterStop < 2000, 'the stop cut the task short');
    assert.ok(Date.now() - stopAckedAt >= 2500);
    assert.equal((await admin(s, `/v1/tasks/${slow.body.taskId}/resume`, 'POST')).status, 409, 'a stopped task stays stopped');
    await Promise.all(clients.map((c) => c.close()));
  });

  test('a stopped persistent broadcast is not delivered to devices that connect later', { timeout: 60_000 }, async () => {
    const clients = await connectMany(s, 'stopme', 40);
    const r = await s.send({ to: { all: true }, payload: 'recalled', ratePerSecond: 4 });
    await eventually(() => frameCount(clients, r.body.id) >= 1, { what: 'first deliveries' });
    assert.equal((await admin(s, `/v1/tasks/${r.body.taskId}/stop`, 'POST')).body.state, 'stopped');
    const late = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('after-stop', 'phone')).token);
    await assertOnlyMarker(s, late, 'after-stop');
    await Promise.all([...clients, late].map((c) => c.close()));
  });

  test('a list of 10,000 users, mostly offline, is accepted and the online ones receive', { timeout: 120_000 }, async () => {
    const online = await connectMany(s, 'list', 20);
    const users = Array.from({ length: 10_000 }, (_, i) => `list${i}`);
    const r = await s.send({ to: { users }, payload: 'to many' });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    await Promise.all(online.map((c) => c.waitFor(1, 90_000)));
    assert.equal(frameCount(online, r.body.id), 20);
    await Promise.all(online.map((c) => c.close()));
  });

  test('task API: operator key required, unknown tasks are 404, an app sees only its own tasks', { timeout: 30_000 }, async () => {
    assert.equal((await admin(s, '/v1/tasks', 'GET', 'wrong')).status, 401);
    assert.equal((await admin(s, '/v1/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV/stop', 'POST')).status, 404);
    assert.equal((await admin(s, '/v1/tasks/not-an-id')).status, 404);
    const list = await admin(s, `/v1/tasks?app=${s.app}&limit=10`);
    assert.equal(list.status, 200);
    assert.ok(list.body.tasks.length >= 1);
    const mine = await fetch(`${s.collector.url}/v1/tasks/${list.body.tasks[0].id}`, { headers: { authorization: `Bearer ${s.apiKey}` } });
    assert.equal(mine.status, 200);
    assert.equal(((await mine.json()) as any).app, s.app);
  });
});
