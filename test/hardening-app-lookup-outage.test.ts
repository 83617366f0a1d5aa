import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { startStack, type TestStack, wsOf } from './support/stack.js';
import { startService, type RunningService } from './support/services.js';
import { stack as infra } from './support/env.js';
import { tcpProxy } from './support/tcpProxy.js';
import { eventually } from './support/eventually.js';

/** A raw handshake: the status and error code of a refusal, 101 when accepted. */
function handshake(url: string, token: string): Promise<{ status: number; code?: string; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url.replace(/^ws/, 'http')}?token=${encodeURIComponent(token)}`, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') },
      timeout: 15_000,
    });
    req.on('upgrade', (_res, socket) => {
      socket.destroy();
      resolve({ status: 101 });
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          code: text ? JSON.parse(text).error?.code : undefined,
          retryAfter: res.headers['retry-after'] as string | undefined,
        }),
      );
    });
    req.on('timeout', () => req.destroy(new Error('handshake timed out')));
    req.on('error', reject);
  });
}

describe('hardening: a MongoDB outage on the pusher is 503 (retry), never 401 (the SDK gives up for good)', () => {
  let s: TestStack;
  let pusher: RunningService;
  const target = new URL(infra.mongoUrl);
  const proxy = tcpProxy(target.hostname, Number(target.port || 27017));
  before(async () => {
    s = await startStack({ pushers: 0 });
    await proxy.open();
    const mongoUrl = new URL(infra.mongoUrl);
    mongoUrl.host = `127.0.0.1:${proxy.port}`;
    pusher = await startService('pusher', { ...s.env, MONGO_URL: mongoUrl.toString(), NODE_ID: `${s.env.MONGO_DB}-outage` });
  });
  after(async () => {
    await pusher?.stop();
    await proxy.cut().catch(() => undefined);
    await s?.stop();
  });

  test('handshake and /v1/session answer 503 UNAVAILABLE while the app cannot be looked up, then connect again', { timeout: 90_000 }, async () => {
    const { token } = await s.token('during-outage', 'phone');
    await proxy.cut(); // before this pusher ever looked the app up
    const refused = await handshake(wsOf(pusher.url), token);
    assert.equal(refused.status, 503, JSON.stringify(refused));
    assert.equal(refused.code, 'UNAVAILABLE');
    assert.ok(Number(refused.retryAfter) >= 1);
    const session = await fetch(`${pusher.url}/v1/session?token=${encodeURIComponent(token)}`);
    assert.equal(session.status, 503);
    assert.equal(((await session.json()) as { error: { code: string } }).error.code, 'UNAVAILABLE');
    // MongoDB back: the same token connects (the driver reconnects on its own).
    await proxy.open();
    await eventually(() => handshake(wsOf(pusher.url), token), { what: 'a 101 handshake', until: (r) => r.status === 101, timeoutMs: 30_000, intervalMs: 250 });
    const ok = await fetch(`${pusher.url}/v1/session?token=${encodeURIComponent(token)}`);
    assert.equal(ok.status, 200);
    assert.equal(pusher.proc.exitCode, null);
  });
});
