/**
 * Requests the HTTP fuzzing turned up (issue 12): each used to be answered
 * 500 INTERNAL (or a misleading 404/202) and is now a clear 4xx with the JSON
 * error shape, through the collector's and auth's public HTTP API.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { startStack, type TestStack } from './support/stack.js';

let s: TestStack;
before(async () => {
  s = await startStack({ pushers: 0, dispatchers: 0 });
});
after(async () => {
  await s?.stop();
});

async function call(url: string, init: RequestInit & { headers?: Record<string, string> } = {}) {
  const res = await fetch(url, { ...init, headers: { authorization: `Bearer ${s.apiKey}`, ...init.headers }, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  let body: any;
  try {
    body = JSON.parse(text);
  } catch {
    body = text;
  }
  return { status: res.status, body, headers: res.headers };
}

test('a path parameter with a malformed percent-escape is 400 INVALID_REQUEST, not 500', async () => {
  for (const path of ['/v1/tasks/%E0%A4%A', '/v1/users/%/presence', '/v1/users/%ZZ/kick']) {
    const res = await call(`${s.collector.url}${path}`, { method: path.endsWith('kick') ? 'POST' : 'GET' });
    assert.equal(res.status, 400, `${path}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'INVALID_REQUEST');
    assert.match(res.body.error.message, /percent-encoding/);
  }
});

test('a body that does not inflate under its Content-Encoding is 400 INVALID_REQUEST, not 500', async () => {
  const notGzip = JSON.stringify({ to: { users: ['u1'] }, payload: 1, persistent: false });
  for (const [url, encoding] of [
    [`${s.collector.url}/v1/messages`, 'gzip'],
    [`${s.collector.url}/v1/messages`, 'deflate'],
    [`${s.collector.url}/v1/users/u1/kick`, 'gzip'],
    [`${s.auth.url}/v1/tokens`, 'br'],
  ] as const) {
    const res = await call(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-encoding': encoding }, body: notGzip });
    assert.equal(res.status, 400, `${url} ${encoding}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'INVALID_REQUEST');
  }
  // A body that is really gzip still goes through.
  const { gzipSync } = await import('node:zlib');
  const ok = await call(`${s.collector.url}/v1/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    body: gzipSync(notGzip),
  });
  assert.equal(ok.status, 202, JSON.stringify(ok.body));
});

test('a known path asked with the wrong method is 405 METHOD_NOT_ALLOWED with Allow; an unknown path stays 404', async () => {
  const cases = [
    [s.collector.url, 'GET', '/v1/messages', 'POST'],
    [s.collector.url, 'PATCH', '/v1/messages', 'POST'],
    [s.collector.url, 'DELETE', '/v1/tasks', 'GET, HEAD'],
    [s.collector.url, 'GET', '/v1/users/u1/kick', 'POST'],
    [s.auth.url, 'GET', '/v1/tokens', 'POST'],
    [s.auth.url, 'PUT', '/healthz', 'GET, HEAD'],
  ] as const;
  for (const [base, method, path, allow] of cases) {
    const res = await call(`${base}${path}`, { method });
    assert.equal(res.status, 405, `${method} ${path}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'METHOD_NOT_ALLOWED');
    assert.equal(res.headers.get('allow'), allow);
  }
  const missing = await call(`${s.collector.url}/v1/nothing-here`);
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'NOT_FOUND');
});

/** Sends raw bytes on a fresh connection and resolves with everything the server wrote before closing. */
function rawRequest(baseUrl: string, bytes: string): Promise<string> {
  const { hostname, port } = new URL(baseUrl);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(bytes));
    let got = '';
    socket.setTimeout(10_000, () => socket.destroy(new Error(`no answer; got ${JSON.stringify(got)}`)));
    socket.on('data', (d) => (got += d.toString()));
    socket.once('error', reject);
    socket.once('close', () => resolve(got));
  });
}

test('requests refused by the HTTP parser get the JSON error shape: 431 for oversized headers, 400 for a malformed request', async () => {
  const longQuery = Array.from({ length: 3000 }, (_, i) => `a${i}=1`).join('&');
  const big = await call(`${s.collector.url}/v1/tasks?${longQuery}`);
  assert.equal(big.status, 431);
  assert.equal(big.body.error.code, 'HEADERS_TOO_LARGE');

  for (const base of [s.collector.url, s.auth.url]) {
    const answer = await rawRequest(base, 'GET /healthz HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 400 /, answer);
    const body = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4));
    assert.equal(body.error.code, 'INVALID_REQUEST');
  }
});

test('a task action named after an Object.prototype member is 404 "no action", not 409 INVALID_TRANSITION', async () => {
  const sent = await s.send({ to: { group: 'fuzz-actions' }, payload: 1, persistent: false });
  assert.equal(sent.status, 202, JSON.stringify(sent.body));
  for (const action of ['constructor', 'toString', '__proto__', 'hasOwnProperty']) {
    const res = await call(`${s.collector.url}/v1/tasks/${sent.body.taskId}/${action}`, { method: 'POST' });
    assert.equal(res.status, 404, `${action}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'NOT_FOUND');
    assert.match(res.body.error.message, /no action/);
  }
});

test('a kick whose body is not an object, or whose app is not a non-empty string, is 400', async () => {
  for (const body of ['[]', '{"app":{}}', '{"app":""}']) {
    const res = await call(`${s.collector.url}/v1/users/u1/kick`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    assert.equal(res.status, 400, `${body}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, 'INVALID_REQUEST');
  }
  const ok = await call(`${s.collector.url}/v1/users/u1/kick`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"reason":"bye"}' });
  assert.equal(ok.status, 202, JSON.stringify(ok.body));
});
