import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, startStack, type TestClient, type TestStack, wsOf } from './support/stack.js';

/** Resolves with the first frame (already received or later) that `match` accepts. */
function frameWhere(c: TestClient, match: (f: any) => boolean, timeoutMs = 10_000): Promise<any> {
  const seen = c.frames.find(match);
  if (seen) return Promise.resolve(seen);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no such frame in ${JSON.stringify(c.frames)}`)), timeoutMs);
    const onMessage = (d: Buffer) => {
      const f = JSON.parse(d.toString());
      if (!match(f)) return;
      clearTimeout(timer);
      c.ws.off('message', onMessage);
      resolve(f);
    };
    c.ws.on('message', onMessage);
  });
}

describe('hardening: a renewed token with fewer group grants ends the revoked subscriptions', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ openGroups: false });
  });
  after(async () => {
    await s?.stop();
  });

  const tokenWith = async (groups: string[]) => {
    const res = await fetch(`${s.auth.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'member', deviceId: 'phone', groups }),
    });
    assert.equal(res.status, 200);
    return ((await res.json()) as { token: string }).token;
  };

  test('after an auth frame without team-b, team-b messages stop and the client is told; team-a goes on', { timeout: 60_000 }, async () => {
    const c = await connectClient(wsOf(s.pushers[0]!.url), await tokenWith(['team-a', 'team-b']));
    for (const group of ['team-a', 'team-b']) {
      c.ws.send(JSON.stringify({ type: 'subscribe', group }));
      await frameWhere(c, (f) => f.type === 'subscribed' && f.group === group);
    }
    c.ws.send(JSON.stringify({ type: 'auth', token: await tokenWith(['team-a']) }));
    await frameWhere(c, (f) => f.type === 'authed');
    const left = await frameWhere(c, (f) => f.type === 'unsubscribed' && f.group === 'team-b');
    assert.equal(typeof left.reason, 'string');
    // A revoked group's message, then an allowed one: only the allowed one arrives.
    const revoked = await s.send({ to: { group: 'team-b' }, payload: 'revoked', persistent: false });
    assert.equal(revoked.status, 202);
    const allowed = await s.send({ to: { group: 'team-a' }, payload: 'allowed', persistent: false });
    await c.waitFor(1);
    await frameWhere(c, (f) => f.type === 'message' && f.id === allowed.body.id);
    // The revoked one was submitted first on the same path; give it the same chance to arrive.
    const marker = await s.send({ to: { group: 'team-a' }, payload: 'marker', persistent: false });
    await frameWhere(c, (f) => f.type === 'message' && f.id === marker.body.id);
    assert.deepEqual(
      c.messages.map((m) => m.payload),
      ['allowed', 'marker'],
    );
    // Joining it again is refused with the renewed token.
    c.ws.send(JSON.stringify({ type: 'subscribe', group: 'team-b' }));
    assert.equal((await frameWhere(c, (f) => f.type === 'error' && f.group === 'team-b')).code, 'GROUP_FORBIDDEN');
    await c.close();
  });
});
