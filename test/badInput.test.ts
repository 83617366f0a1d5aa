import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, startStack, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { expiredToken, forgedToken } from './support/tokens.js';

describe('bad input is refused clearly and loses nothing accepted', () => {
  let s: TestStack;
  let wsUrl: string;
  before(async () => {
    s = await startStack({ allowedOrigins: ['https://good.example'] });
    wsUrl = s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws';
  });
  after(async () => {
    await s?.stop();
  });

  test('collector: each bad submission gets its status and error code', { timeout: 30_000 }, async () => {
    const cases: [string, Parameters<TestStack['send']>, number, string][] = [
      ['no key', [{ to: { users: ['u'] }, payload: 1 }, { apiKey: '' }], 401, 'UNAUTHORIZED'],
      ['wrong key', [{ to: { users: ['u'] }, payload: 1 }, { apiKey: 'nope' }], 401, 'UNAUTHORIZED'],
      ['invalid JSON', [null, { raw: '{"to":' }], 400, 'INVALID_JSON'],
      ['not JSON', [null, { raw: 'hello', contentType: 'text/plain' }], 415, 'UNSUPPORTED_MEDIA_TYPE'],
      ['array body', [[1, 2]], 400, 'INVALID_REQUEST'],
      ['missing to', [{ payload: 1 }], 400, 'INVALID_REQUEST'],
      ['empty users', [{ to: { users: [] }, payload: 1 }], 400, 'INVALID_REQUEST'],
      ['user with space', [{ to: { users: ['a b'] }, payload: 1 }], 400, 'INVALID_REQUEST'],
      ['two targets', [{ to: { users: ['u'], all: true }, payload: 1 }], 400, 'INVALID_REQUEST'],
      ['missing payload', [{ to: { users: ['u'] } }], 400, 'INVALID_REQUEST'],
      ['persistent not boolean', [{ to: { users: ['u'] }, payload: 1, persistent: 'yes' }], 400, 'INVALID_REQUEST'],
      ['ttl zero', [{ to: { users: ['u'] }, payload: 1, ttlSeconds: 0 }], 400, 'INVALID_REQUEST'],
      ['unknown field', [{ to: { users: ['u'] }, payload: 1, persistant: true }], 400, 'INVALID_REQUEST'],
      ['payload too large', [{ to: { users: ['u'] }, payload: 'x'.repeat(20_000) }], 413, 'PAYLOAD_TOO_LARGE'],
      ['body too large', [null, { raw: JSON.stringify({ to: { users: ['u'] }, payload: 'x'.repeat(1_100_000) }) }], 413, 'PAYLOAD_TOO_LARGE'],
      ['bad group name', [{ to: { group: 'no spaces please' }, payload: 1 }], 400, 'INVALID_REQUEST'],
      ['all must be true', [{ to: { all: false }, payload: 1 }], 400, 'INVALID_REQUEST'],
      ['rate on a user list', [{ to: { users: ['u'] }, payload: 1, ratePerSecond: 10 }], 400, 'INVALID_REQUEST'],
      ['rate not positive', [{ to: { all: true }, payload: 1, ratePerSecond: 0 }], 400, 'INVALID_REQUEST'],
      ['too many users', [{ to: { users: Array.from({ length: 10_001 }, (_, i) => `u${i}`) }, payload: 1 }], 400, 'INVALID_REQUEST'],
    ];
    for (const [name, args, status, code] of cases) {
      const res = await s.send(...args);
      assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, code, name);
      assert.equal(typeof res.body.error.message, 'string');
    }
    const typo = await s.send({ to: { users: ['u'] }, payload: 1, persistant: true });
    assert.match(typo.body.error.message, /persistant: unknown field/);
    const count = await s.mongo.db(s.env.MONGO_DB).collection('messages').countDocuments();
    assert.equal(count, 0, 'nothing was stored for refused submissions');
  });

  test('an idempotency-key retry returns the same id and stores nothing new', { timeout: 20_000 }, async () => {
    const body = { to: { users: ['idem'] }, payload: { n: 1 }, idempotencyKey: 'order-42-shipped' };
    const first = await s.send(body);
    const second = await s.send(body);
    assert.equal(first.status, 202);
    assert.equal(second.status, 202);
    assert.equal(second.body.id, first.body.id);
    assert.equal(second.body.duplicate, true);
    assert.equal(await s.mongo.db(s.env.MONGO_DB).collection('messages').countDocuments({ users: 'idem' }), 1);
  });

  test(
    '40 concurrent submissions with one key (batched claims): one message, every answer a 202 with its id or a 409 in progress',
    { timeout: 30_000 },
    async () => {
      const body = { to: { users: ['idem-burst'] }, payload: { n: 2 }, persistent: true, idempotencyKey: 'burst-key' };
      const others = Array.from({ length: 20 }, (_, i) => ({ ...body, payload: { n: i }, idempotencyKey: `burst-other-${i}` }));
      const answers = await Promise.all([...Array.from({ length: 40 }, () => s.send(body)), ...others.map((b) => s.send(b))]);
      const same = answers.slice(0, 40);
      const ids = new Set(same.filter((a) => a.status === 202).map((a) => a.body.id));
      assert.equal(ids.size, 1, `one message id for one key: ${JSON.stringify([...ids])}`);
      for (const a of same) assert.ok(a.status === 202 || (a.status === 409 && a.body.error.code === 'IDEMPOTENCY_IN_PROGRESS'), JSON.stringify(a.body));
      assert.ok(
        answers.slice(40).every((a) => a.status === 202 && !a.body.duplicate),
        'distinct keys in the same batch are all accepted',
      );
      // Once the first is done, a retry is its duplicate.
      await eventually(
        async () => {
          const again = await s.send(body);
          assert.equal(again.status, 202, JSON.stringify(again.body));
          assert.equal(again.body.id, [...ids][0]);
          assert.equal(again.body.duplicate, true);
          return true;
        },
        { timeoutMs: 10_000, what: 'the retry answered as a duplicate' },
      );
      assert.equal(await s.mongo.db(s.env.MONGO_DB).collection('messages').countDocuments({ users: 'idem-burst' }), 21);
    },
  );

  test('auth: bad token requests are refused', { timeout: 20_000 }, async () => {
    const post = (body: unknown, key = s.apiKey) =>
      fetch(`${s.auth.url}/v1/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    assert.equal((await post({ userId: 'u', deviceId: 'd' }, 'wrong')).status, 401);
    const bad = await post({ userId: 'u|x', deviceId: 'd' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error.details.field, 'userId');
    assert.equal((await post({ userId: 'u' })).status, 400);
  });

  test('pusher: forged, expired and missing tokens and wrong origins are refused before the upgrade', { timeout: 30_000 }, async () => {
    const refusal = async (token: string, headers: Record<string, string> = {}) => {
      try {
        const c = await connectClient(wsUrl, token, headers);
        await c.close();
        return 101;
      } catch (err) {
        return (err as { status?: number }).status;
      }
    };
    assert.equal(await refusal(''), 401);
    assert.equal(await refusal('not.a.jwt'), 401);
    const forged = await forgedToken(s, 'mallory', 'd');
    assert.equal(await refusal(forged), 401);
    const { token } = await s.token('carol', 'phone');
    const [h, p, sig] = token.split('.');
    const claims = JSON.parse(Buffer.from(p!, 'base64url').toString());
    const tampered = `${h}.${Buffer.from(JSON.stringify({ ...claims, sub: 'admin' })).toString('base64url')}.${sig}`;
    assert.equal(await refusal(tampered), 401);
    assert.equal(await refusal(token, { origin: 'https://evil.example' }), 403);
    assert.equal(await refusal(token, { origin: 'https://good.example' }), 101);

    // A token signed with the real current key but already expired.
    const expired = await expiredToken(s, 'carol', 'phone');
    assert.equal(await refusal(expired), 401);

    // The same verdicts over plain HTTP, for browsers that cannot see a refused handshake's status.
    const session = (t: string) => fetch(`${s.pushers[0]!.url}/v1/session?token=${encodeURIComponent(t)}`);
    const ok = await session(token);
    assert.equal(ok.status, 200);
    assert.deepEqual(await ok.json().then((b: any) => [b.userId, b.deviceId, b.app]), ['carol', 'phone', s.app]);
    const gone = await session(expired);
    assert.equal(gone.status, 401);
    assert.equal(((await gone.json()) as any).error.code, 'TOKEN_EXPIRED');
    assert.equal((await session(forged)).status, 401);
    const wrongOrigin = await fetch(`${s.pushers[0]!.url}/v1/session?token=${encodeURIComponent(token)}`, { headers: { origin: 'https://evil.example' } });
    assert.equal(wrongOrigin.status, 403);
    assert.equal(((await wrongOrigin.json()) as any).error.code, 'ORIGIN_NOT_ALLOWED');
  });

  test('pusher: garbage frames get error frames, a flood of them closes the socket with 4002', { timeout: 30_000 }, async () => {
    const { token } = await s.token('dave', 'phone');
    const c = await connectClient(wsUrl, token);
    c.ws.send('not json');
    c.ws.send(JSON.stringify({ type: 'ack', ids: 'nope' }));
    c.ws.send(JSON.stringify({ type: 'warp' }));
    c.ws.send(JSON.stringify({ type: 'ping' }));
    await eventually(() => c.frames.length >= 5, { what: 'four replies after the welcome' });
    assert.equal(c.frames[0].type, 'welcome');
    assert.deepEqual(
      c.frames.slice(1, 5).map((f) => f.code ?? f.type),
      ['BAD_FRAME', 'BAD_FRAME', 'BAD_FRAME', 'pong'],
    );
    // The connection is still healthy: a message still arrives.
    const r = await s.send({ to: { users: ['dave'] }, payload: 'still here' });
    await c.waitFor(1);
    assert.equal(c.messages[0]!.id, r.body.id);
    for (let i = 0; i < 12; i++) c.ws.send('garbage');
    const closed = await c.closed;
    assert.equal(closed.code, 4002);
  });
});
