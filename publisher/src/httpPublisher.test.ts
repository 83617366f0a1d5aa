import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createPublisher, parseRetryAfter } from './httpPublisher.js';
import { PublishError } from './publishError.js';

// A real HTTP server on port 0 that answers each request with the next scripted reply.
type Reply = (res: http.ServerResponse, req: http.IncomingMessage) => void;
const json =
  (status: number, body: unknown, headers: Record<string, string> = {}): Reply =>
  (res) =>
    res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
const accepted = (id = '01JXA3K4Q9W2M8T6ZP0R5C7YBD') => json(202, { id, status: 'accepted' });
const error = (status: number, code: string, headers: Record<string, string> = {}) =>
  json(status, { error: { code, message: `${code.toLowerCase()} now` } }, headers);
const hangUp: Reply = (res) => res.socket?.destroy();
const noAnswer: Reply = () => undefined;

describe('createPublisher against a local HTTP server', () => {
  let server: http.Server;
  let url: string;
  let script: Reply[] = [];
  let requests: { headers: http.IncomingHttpHeaders; body: any; path: string | undefined }[] = [];

  before(async () => {
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        requests.push({ headers: req.headers, body: JSON.parse(body), path: req.url });
        (script.shift() ?? error(500, 'SCRIPT_EXHAUSTED'))(res, req);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  });
  beforeEach(() => {
    script = [];
    requests = [];
  });

  const fast = () => createPublisher({ collectorUrl: url, apiKey: 'k1', retries: 3, backoff: { minMs: 5, maxMs: 20 }, timeoutMs: 300 });
  const message = { to: { users: ['u1'] }, payload: { hello: 'world' } };

  test('a 202 resolves with the id; the key and body go over the wire', { timeout: 5000 }, async () => {
    script = [accepted()];
    const r = await fast().send(message);
    assert.deepEqual(r, { id: '01JXA3K4Q9W2M8T6ZP0R5C7YBD', status: 'accepted' });
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.path, '/v1/messages');
    assert.equal(requests[0]!.headers.authorization, 'Bearer k1');
    assert.equal(requests[0]!.headers['content-type'], 'application/json');
    assert.deepEqual({ ...requests[0]!.body, idempotencyKey: undefined }, { ...message, idempotencyKey: undefined });
    assert.match(requests[0]!.body.idempotencyKey, /^[0-9a-f-]{36}$/, 'a UUID was generated');
  });

  test('network errors, 503, 429 and 409 IDEMPOTENCY_IN_PROGRESS are retried with the same idempotency key', { timeout: 5000 }, async () => {
    script = [
      hangUp,
      error(503, 'STORE_UNAVAILABLE'),
      error(429, 'RATE_LIMITED'),
      error(409, 'IDEMPOTENCY_IN_PROGRESS'),
      accepted('01JXA3K4Q9W2M8T6ZP0R5C0005'),
    ];
    const r = await createPublisher({ collectorUrl: url, apiKey: 'k1', retries: 4, backoff: { minMs: 5, maxMs: 20 } }).send(message);
    assert.equal(r.id, '01JXA3K4Q9W2M8T6ZP0R5C0005');
    assert.equal(requests.length, 5);
    assert.equal(new Set(requests.map((q) => q.body.idempotencyKey)).size, 1, 'one key for every attempt');
  });

  test("the caller's idempotency key is sent unchanged", { timeout: 5000 }, async () => {
    script = [error(503, 'UNAVAILABLE'), accepted()];
    await fast().send({ ...message, idempotencyKey: 'order-42-shipped' });
    assert.deepEqual(
      requests.map((q) => q.body.idempotencyKey),
      ['order-42-shipped', 'order-42-shipped'],
    );
  });

  test('Retry-After is honoured', { timeout: 5000 }, async () => {
    script = [error(429, 'RATE_LIMITED', { 'retry-after': '1' }), accepted()];
    const started = Date.now();
    await fast().send(message);
    const elapsed = Date.now() - started;
    assert.ok(elapsed >= 1000, `waited ${elapsed} ms, Retry-After said 1 s`);
    assert.ok(elapsed < 2500, `waited ${elapsed} ms`);
  });

  test('a Retry-After beyond maxRetryAfterMs is not waited for', { timeout: 5000 }, async () => {
    script = [error(503, 'UNAVAILABLE', { 'retry-after': '120' })];
    const p = createPublisher({ collectorUrl: url, apiKey: 'k1', maxRetryAfterMs: 10_000 });
    await assert.rejects(p.send(message), (err: PublishError) => err.code === 'UNAVAILABLE' && err.status === 503 && err.attempts === 1);
    assert.equal(requests.length, 1);
  });

  test('a request without an answer times out and is retried', { timeout: 5000 }, async () => {
    script = [noAnswer, accepted()];
    const r = await fast().send(message);
    assert.equal(r.status, 'accepted');
    assert.equal(requests.length, 2);
  });

  test('non-retriable answers throw a PublishError at once, with status, code and message', { timeout: 5000 }, async () => {
    for (const [status, code] of [
      [400, 'INVALID_REQUEST'],
      [401, 'UNAUTHORIZED'],
      [413, 'PAYLOAD_TOO_LARGE'],
      [409, 'CONFLICT'],
      [500, 'INTERNAL'],
    ] as const) {
      requests = [];
      script = [error(status, code)];
      const err = await fast()
        .send(message)
        .then(
          () => assert.fail('should throw'),
          (e: unknown) => e,
        );
      assert.ok(err instanceof PublishError);
      assert.deepEqual([err.status, err.code, err.message, err.retriable, err.attempts], [status, code, `${code.toLowerCase()} now`, false, 1]);
      assert.equal(requests.length, 1, `${status} ${code} is not retried`);
    }
  });

  test('retries are bounded: after retries + 1 requests the last error is thrown', { timeout: 5000 }, async () => {
    script = Array.from({ length: 10 }, () => error(503, 'STORE_UNAVAILABLE'));
    await assert.rejects(
      fast().send(message),
      (err: PublishError) => err.code === 'STORE_UNAVAILABLE' && err.status === 503 && err.retriable && err.attempts === 4,
    );
    assert.equal(requests.length, 4);
  });

  test('a network error that never clears ends as NETWORK_ERROR with status 0', { timeout: 5000 }, async () => {
    script = [hangUp, hangUp];
    const p = createPublisher({ collectorUrl: url, apiKey: 'k1', retries: 1, backoff: { minMs: 5, maxMs: 5 } });
    await assert.rejects(p.send(message), (err: PublishError) => err.code === 'NETWORK_ERROR' && err.status === 0 && err.attempts === 2);
  });

  test('options and messages are checked before anything is sent', () => {
    assert.throws(() => createPublisher({ collectorUrl: 'nope', apiKey: 'k' }), /collectorUrl "nope" is not a URL/);
    assert.throws(() => createPublisher({ collectorUrl: url, apiKey: '' }), /apiKey is required/);
    assert.throws(() => createPublisher({ collectorUrl: url, apiKey: 'k', retries: -1 }), /retries must be an integer >= 0/);
    assert.throws(() => createPublisher({ collectorUrl: url, apiKey: 'k', backoff: { minMs: 50, maxMs: 10 } }), /backoff.maxMs must be an integer >= 50/);
    return assert.rejects(fast().send({ to: { users: ['u'] } } as never), /needs `to` and `payload`/);
  });
});

test('Retry-After: seconds or an HTTP date', () => {
  assert.equal(parseRetryAfter('3'), 3000);
  assert.equal(parseRetryAfter(null), undefined);
  assert.equal(parseRetryAfter('soon'), undefined);
  const now = Date.parse('2025-06-01T12:00:00Z');
  assert.equal(parseRetryAfter('Sun, 01 Jun 2025 12:00:05 GMT', now), 5000);
  assert.equal(parseRetryAfter('Sun, 01 Jun 2025 11:00:00 GMT', now), 0);
});
