import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, startStack, type TestStack, wsOf } from './support/stack.js';

/**
 * User and device ids go into Kafka keys, Avro strings and Redis keys as UTF-8. A lone
 * surrogate (`"\ud800"` in JSON) becomes U+FFFD there: a message to "a\ud800" was answered
 * 202 and reached nobody (its user's socket, keyed by the JS string, never matched). Such
 * ids, and control characters, are refused where they enter: messages, tokens, kicks.
 */
const BAD_IDS: [string, string][] = [
  ['a lone high surrogate', 'id\\ud800'],
  ['a lone low surrogate', 'id\\udc00'],
  ['surrogates in the wrong order', 'id\\udc00\\ud800'],
  ['NUL', 'id\\u0000'],
  ['a C0 control', 'id\\u001b[31m'],
  ['DEL', 'id\\u007f'],
  ['a C1 control', 'id\\u0085'],
];

describe('user and device ids are well-formed text', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ dispatchers: 1, pushers: 1 });
  });
  after(async () => {
    await s?.stop();
  });

  const post = async (url: string, raw: string) => {
    const res = await fetch(url, { method: 'POST', headers: { authorization: `Bearer ${s.apiKey}`, 'content-type': 'application/json' }, body: raw });
    return { status: res.status, body: (await res.json()) as any };
  };

  test('POST /v1/messages refuses such a user id with 400 naming the entry; nothing is accepted', { timeout: 30_000 }, async () => {
    for (const [what, id] of BAD_IDS) {
      // Raw JSON text: the escapes reach the server as they would from any client.
      const res = await post(`${s.collector.url}/v1/messages`, `{"to":{"users":["ok","${id}"]},"payload":1}`);
      assert.equal(res.status, 400, `${what}: ${JSON.stringify(res.body)}`);
      assert.equal(res.body.error.code, 'INVALID_REQUEST');
      assert.deepEqual(res.body.error.details, { field: 'to.users[1]' }, what);
      assert.match(res.body.error.message, /control characters, lone surrogates/);
    }
  });

  test('POST /v1/tokens refuses such a user or device id with 400 naming the field', { timeout: 30_000 }, async () => {
    for (const [what, id] of BAD_IDS) {
      for (const field of ['userId', 'deviceId']) {
        const body = field === 'userId' ? `{"userId":"${id}","deviceId":"d"}` : `{"userId":"u","deviceId":"${id}"}`;
        const res = await post(`${s.auth.url}/v1/tokens`, body);
        assert.equal(res.status, 400, `${what} in ${field}: ${JSON.stringify(res.body)}`);
        assert.deepEqual(res.body.error.details, { field }, what);
      }
    }
  });

  test('a kick names a valid user and device', { timeout: 30_000 }, async () => {
    const res = await post(`${s.collector.url}/v1/users/u/kick`, `{"deviceId":"d\\ud800"}`);
    assert.equal(res.status, 400, JSON.stringify(res.body));
    assert.deepEqual(res.body.error.details, { field: 'deviceId' });
  });

  test('ids beyond ASCII that are well-formed (accents, CJK, emoji pairs up to 128 code units) still work end to end', { timeout: 30_000 }, async () => {
    const users = ['élodie', 'ユーザー', '😀'.repeat(64)];
    const clients = await Promise.all(users.map(async (u) => connectClient(wsOf(s.pushers[0]!.url), (await s.token(u, '📱')).token)));
    const res = await s.send({ to: { users }, payload: { hello: 'world' } });
    assert.equal(res.status, 202, JSON.stringify(res.body));
    await Promise.all(clients.map((c) => c.waitFor(1, 10_000)));
    for (const c of clients) {
      assert.equal(c.messages[0]!.id, res.body.id);
      await c.close();
    }
    const tooLong = await post(`${s.auth.url}/v1/tokens`, JSON.stringify({ userId: '😀'.repeat(65), deviceId: 'd' }));
    assert.equal(tooLong.status, 400, 'more than 128 UTF-16 code units');
  });
});
