import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertOnlyMarker, connectClient, startStack, type TestStack } from './support/stack.js';
import { startService, type RunningService } from './support/services.js';
import { eventually } from './support/eventually.js';

describe('ingestion limits, expiry and group grants', () => {
  let s: TestStack;
  let second: RunningService;
  before(async () => {
    s = await startStack({ limits: { requestsPerSecond: 5, recipientsPerSecond: 1000 }, openGroups: false });
    second = await startService('collector', s.env);
  });
  after(async () => {
    await second?.stop();
    await s?.stop();
  });

  test('two collectors share one per-app limit and answer 429 with Retry-After', { timeout: 30_000 }, async () => {
    const post = (url: string) =>
      fetch(`${url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${s.apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: { users: ['lim'] }, payload: 1, persistent: false }),
      });
    const started = Date.now();
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => post(i % 2 === 0 ? s.collector.url : second.url)));
    const elapsed = (Date.now() - started) / 1000;
    const accepted = answers.filter((r) => r.status === 202).length;
    const limited = answers.filter((r) => r.status === 429);
    // A full bucket (5) plus what refills while the burst is in flight.
    assert.ok(accepted >= 5 && accepted <= 5 + Math.ceil(elapsed * 5) + 1, `accepted ${accepted} in ${elapsed}s`);
    assert.equal(accepted + limited.length, 20);
    const body = (await limited[0]!.json()) as any;
    assert.equal(body.error.code, 'RATE_LIMITED');
    assert.ok(Number(limited[0]!.headers.get('retry-after')) >= 1);
    assert.ok(body.error.details.retryAfterMs > 0);
    const statuses = new Set(await Promise.all(answers.map(async (r, i) => `${i % 2}:${r.status}`)));
    assert.ok(statuses.has('0:429') || statuses.has('1:429'), 'the limit is shared, not per collector');
  });

  test('a message past its TTL is never delivered on connect', { timeout: 30_000 }, async () => {
    await new Promise((resolve) => setTimeout(resolve, 1100)); // let the request bucket refill
    const r = await s.send({ to: { users: ['ttl'] }, payload: 'short-lived', ttlSeconds: 1 });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    // Expiry is what is being tested: wait until it has passed.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const c = await connectClient(s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws', (await s.token('ttl', 'phone')).token);
    await assertOnlyMarker(s, c, 'ttl');
    await c.close();
  });

  test('with closed groups, a token joins only the groups it was granted', { timeout: 30_000 }, async () => {
    const res = await fetch(`${s.auth.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'gina', deviceId: 'phone', groups: ['team-7', 'region:eu*'] }),
    });
    const { token } = (await res.json()) as { token: string };
    const c = await connectClient(s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws', token);
    for (const group of ['team-7', 'region:eu-west', 'team-8', 'bad name']) c.ws.send(JSON.stringify({ type: 'subscribe', group }));
    await eventually(() => c.frames.filter((f) => f.type !== 'welcome').length >= 4, { what: 'four replies' });
    const replies = c.frames.filter((f) => f.type !== 'welcome').map((f) => (f.type === 'error' ? f.code : `${f.type}:${f.group}`));
    // Replies to different groups may come in any order (a grant waits for the group index).
    assert.deepEqual(replies.sort(), ['BAD_FRAME', 'GROUP_FORBIDDEN', 'subscribed:region:eu-west', 'subscribed:team-7']);
    const bad = await fetch(`${s.auth.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'gina', deviceId: 'phone', groups: 'team-7' }),
    });
    assert.equal(bad.status, 400);
    await c.close();
  });
});
