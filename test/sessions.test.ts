import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, startStack, type TestStack, wsOf } from './support/stack.js';

describe('kick and device modes', () => {
  let coexist: TestStack;
  let single: TestStack;
  before(async () => {
    [coexist, single] = await Promise.all([startStack({ pushers: 2 }), startStack({ deviceMode: 'single' })]);
  });
  after(async () => {
    await Promise.all([coexist?.stop(), single?.stop()]);
  });

  test('kicking one device of two disconnects only that one, with a kick frame and 4009', { timeout: 30_000 }, async () => {
    const s = coexist;
    const phone = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('kim', 'phone')).token);
    const laptop = await connectClient(wsOf(s.pushers[1]!.url), (await s.token('kim', 'laptop')).token);
    const res = await fetch(`${s.collector.url}/v1/users/kim/kick`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ deviceId: 'laptop', reason: 'password changed' }),
    });
    assert.equal(res.status, 202);
    const closed = await laptop.closed;
    assert.equal(closed.code, 4009);
    assert.deepEqual(
      laptop.frames.find((f) => f.type === 'kick'),
      { type: 'kick', reason: 'password changed' },
    );
    const r = await s.send({ to: { users: ['kim'] }, payload: 'still here' });
    await phone.waitFor(1);
    assert.equal(phone.messages[0]!.id, r.body.id);
    await phone.close();
  });

  test('operator kick needs the operator key and an app', { timeout: 30_000 }, async () => {
    const s = coexist;
    const post = (key: string, body: unknown) =>
      fetch(`${s.admin.url}/v1/users/kim/kick`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    assert.equal((await post('nope', { app: s.app })).status, 401);
    assert.equal((await post('operator-key', {})).status, 400);
    const c = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('kim', 'tablet')).token);
    assert.equal((await post('operator-key', { app: s.app })).status, 202);
    assert.equal((await c.closed).code, 4009);
  });

  test('in single device mode a new connection kicks the older one', { timeout: 30_000 }, async () => {
    const s = single;
    const phone = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('lee', 'phone')).token);
    const laptop = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('lee', 'laptop')).token);
    const closed = await phone.closed;
    assert.equal(closed.code, 4009);
    const r = await s.send({ to: { users: ['lee'] }, payload: 'to the new one' });
    await laptop.waitFor(1);
    assert.equal(laptop.messages[0]!.id, r.body.id);
    await laptop.close();
  });
});
