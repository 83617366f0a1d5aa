import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { topicNames } from '../protocol/topics.js';
import { CLOSE, FRAME_ERROR } from '../protocol/codes.js';
import { decodeRecord } from '../schemas/registry.js';
import type { Ack, Upstream } from '../schemas/types.js';
import { PushClient, type PushEvents } from '../sdk/src/index.js';
import { connectClient, startStack, wsOf, type TestClient, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { topicReader } from './support/topicReader.js';

// Tight limits so that the bounds show within a test: 5 upstream frames of burst at 5/s,
// close after 10 refusals; tokens are warned 4 s before they expire.
const ENV = { PUSHER_UPSTREAM_RATE: '5', PUSHER_UPSTREAM_BURST: '5', PUSHER_UPSTREAM_MAX_REFUSED: '10', PUSHER_TOKEN_WARNING_MS: '4000' };

describe('session bounds: upstream rate, token expiry, acks on Kafka', () => {
  let s: TestStack;
  const reader = topicReader('bounds-test');
  const follow = reader.follow;
  before(async () => {
    s = await startStack({ env: ENV });
  });
  after(async () => {
    await reader.close();
    await s?.stop();
  });

  /** A token from auth with a lifetime of `ttlSeconds` (auth's minimum is 10). */
  async function shortToken(userId: string, deviceId: string, ttlSeconds: number) {
    const res = await fetch(`${s.auth.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${s.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId, deviceId, ttlSeconds }),
    });
    assert.equal(res.status, 200, await res.clone().text());
    return (await res.json()) as { token: string; nodes: string[]; expiresAt: string };
  }

  const errorsOf = (c: TestClient, code: string) => c.frames.filter((f) => f.type === 'error' && f.code === code);
  const pong = async (c: TestClient) => {
    const before = c.frames.filter((f) => f.type === 'pong').length;
    c.ws.send('{"type":"ping"}');
    await eventually(() => c.frames.filter((f) => f.type === 'pong').length > before, { what: 'pong' });
  };

  test('upstream over the rate gets UPSTREAM_RATE_LIMITED and the socket stays healthy; a flood is closed with 4029', { timeout: 45_000 }, async () => {
    const records = await follow<Upstream>(topicNames(s.env.KAFKA_TOPIC_PREFIX).upstream, (v, h) => decodeRecord('Upstream', v, h));
    const c = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('up-flo', 'd1')).token);
    for (let i = 0; i < 8; i++) c.ws.send(JSON.stringify({ type: 'upstream', payload: { i } }));
    // Frames are handled in order, so the pong comes after all 8 were judged.
    await pong(c);
    assert.equal(c.ws.readyState, WebSocket.OPEN, 'still open after refusals');
    const refused = errorsOf(c, FRAME_ERROR.UPSTREAM_RATE_LIMITED).length;
    // A burst of 5; at most a token or two more if the node was slow enough to refill meanwhile.
    assert.ok(refused >= 1 && refused <= 3, `${refused} refused`);
    assert.match(errorsOf(c, FRAME_ERROR.UPSTREAM_RATE_LIMITED)[0].message, /too many upstream frames/);
    const mine = () => records.filter((r) => r.user === 'up-flo').map((r) => JSON.parse(r.payload).i);
    await eventually(() => mine().length >= 8 - refused, { timeoutMs: 20_000, what: 'the accepted upstream records' });
    assert.deepEqual(mine().slice(0, 5), [0, 1, 2, 3, 4], 'the burst went through, in order');
    // Once the bucket refills, upstream is accepted again.
    await new Promise((r) => setTimeout(r, 400)); // 2 tokens at 5/s
    c.ws.send(JSON.stringify({ type: 'upstream', payload: { i: 'after' } }));
    await eventually(() => mine().includes('after'), { timeoutMs: 20_000, what: 'the upstream after the refill' });
    assert.equal(mine().length, 8 - refused + 1, 'refused frames were not published');
    assert.equal(errorsOf(c, FRAME_ERROR.UPSTREAM_RATE_LIMITED).length, refused);

    // A flood: past 10 refusals within 10 s the node closes the socket with 4029.
    for (let i = 0; i < 30 && c.ws.readyState === WebSocket.OPEN; i++) c.ws.send(JSON.stringify({ type: 'upstream', payload: { flood: i } }));
    const closed = await c.closed;
    assert.deepEqual(closed, { code: CLOSE.RATE_LIMITED, reason: 'upstream rate exceeded' });
    assert.ok(errorsOf(c, FRAME_ERROR.UPSTREAM_RATE_LIMITED).length > 10);
  });

  test('a token that expires during the session: token-expiring frame, bad auth frames refused, then close 4001', { timeout: 45_000 }, async () => {
    const grant = await shortToken('exp-raw', 'd1', 10);
    const expiresAt = Date.parse(grant.expiresAt);
    const c = await connectClient(wsOf(s.pushers[0]!.url), grant.token);
    // Bad input on the auth frame: a missing token, a garbage token, another user's token.
    c.ws.send('{"type":"auth"}');
    c.ws.send('{"type":"auth","token":"not-a-jwt"}');
    c.ws.send(JSON.stringify({ type: 'auth', token: (await s.token('someone-else', 'd1')).token }));
    await eventually(() => errorsOf(c, FRAME_ERROR.TOKEN_REFUSED).length >= 2 && errorsOf(c, FRAME_ERROR.BAD_FRAME).length >= 1, { what: 'the refusals' });
    assert.deepEqual(
      errorsOf(c, FRAME_ERROR.BAD_FRAME).map((f) => f.message),
      ['auth.token must be a non-empty string'],
    );
    assert.deepEqual(
      errorsOf(c, FRAME_ERROR.TOKEN_REFUSED)
        .map((f) => f.message)
        .sort(),
      ['TOKEN_INVALID: invalid token', 'the token is for another app, user or device'],
    );

    const closed = await c.closed;
    const closedAt = Date.now();
    assert.deepEqual(closed, { code: CLOSE.TOKEN_EXPIRED, reason: 'token expired' });
    assert.ok(closedAt >= expiresAt - 50, `closed ${expiresAt - closedAt} ms before exp`);
    assert.ok(closedAt <= expiresAt + 4000, `closed ${closedAt - expiresAt} ms after exp`); // 1 s ticks, plus slack for a busy machine
    const warning = c.frames.find((f) => f.type === 'token-expiring');
    assert.deepEqual(warning, { type: 'token-expiring', expiresAt: new Date(expiresAt).toISOString() });
    // The warning came about 4 s before the close (PUSHER_TOKEN_WARNING_MS), not at it.
    assert.equal(c.frames.at(-1)?.type, 'token-expiring');
  });

  test('the SDK renews its token in the session through getToken: no disconnect, messages keep coming', { timeout: 45_000 }, async () => {
    const grant = await shortToken('exp-sdk', 'tab', 10);
    const renewed = await shortToken('exp-sdk', 'tab', 60);
    const noRenew = await shortToken('exp-none', 'tab', 10);
    let calls = 0;
    const log: { name: keyof PushEvents; p: any }[] = [];
    const make = (g: typeof grant, getToken?: () => typeof renewed) => {
      const client = new PushClient({
        token: g.token,
        nodes: g.nodes,
        WebSocket,
        connectivity: null,
        tokenRefreshMarginMs: 0,
        backoff: { minMs: 50, maxMs: 200 },
        getToken,
      });
      for (const name of ['connected', 'disconnected', 'message', 'error'] as const)
        client.on(name, (p) => void log.push({ name, p: { ...(p as object), user: g === noRenew ? 'none' : 'sdk' } }));
      client.connect();
      return client;
    };
    const withRenew = make(grant, () => (calls++, renewed));
    const without = make(noRenew);
    try {
      const ofUser = (user: string, name: keyof PushEvents) => log.filter((e) => e.name === name && e.p.user === user).map((e) => e.p);
      await eventually(() => ofUser('sdk', 'connected').length === 1 && ofUser('none', 'connected').length === 1, { what: 'both connected' });
      // Without getToken the session ends at exp with 4001, and the expired token is then refused.
      await eventually(() => ofUser('none', 'error').length > 0, { timeoutMs: 20_000, what: 'the refusal' });
      assert.deepEqual(
        ofUser('none', 'disconnected').map((d) => [d.code, d.willReconnect]),
        [
          [CLOSE.TOKEN_EXPIRED, true],
          [1006, false],
        ],
      );
      assert.equal(ofUser('none', 'error')[0].code, 'AUTH_REFUSED');
      assert.equal(without.state, 'closed');

      // With getToken the same moment passes without a disconnect.
      await eventually(() => Date.now() > Date.parse(grant.expiresAt) + 1500, { timeoutMs: 15_000, intervalMs: 200, what: 'the first token to be over' });
      assert.equal(calls, 1);
      const { body } = await s.send({ to: { users: ['exp-sdk'] }, payload: 'after exp' });
      await eventually(() => ofUser('sdk', 'message').some((m) => m.id === body.id), { what: 'the message after exp' });
      assert.equal(ofUser('sdk', 'disconnected').length, 0);
      assert.equal(ofUser('sdk', 'connected').length, 1);
      assert.equal(withRenew.state, 'connected');
    } finally {
      withRenew.close();
      without.close();
    }
  });

  test('acks are written to push.acks as Ack records for the device', { timeout: 45_000 }, async () => {
    const acks = await follow<Ack>(topicNames(s.env.KAFKA_TOPIC_PREFIX).acks, (v, h) => decodeRecord('Ack', v, h));
    const c = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('ack-ann', 'phone')).token);
    const ids = [];
    for (const text of ['one', 'two']) ids.push((await s.send({ to: { users: ['ack-ann'] }, payload: { text } })).body.id as string);
    await c.waitFor(2);
    const startedAt = Date.now();
    c.ack(ids);
    const rec = await eventually(() => acks.find((a) => a.user === 'ack-ann'), { timeoutMs: 20_000, what: 'an Ack record' });
    assert.deepEqual(
      { ...rec, at: undefined },
      { app: s.app, user: 'ack-ann', device: 'phone', ids, nodeId: `${s.env.KAFKA_TOPIC_PREFIX.slice(0, -1)}-p1`, at: undefined },
    );
    assert.ok(rec.at >= startedAt - 1000 && rec.at <= Date.now());
    await c.close();
  });
});
