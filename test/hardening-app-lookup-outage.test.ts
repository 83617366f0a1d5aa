import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type TestStack, wsOf } from './support/stack.js';
import { startService, type RunningService } from './support/services.js';
import { stack as infra } from './support/env.js';
import { tcpProxy } from './support/tcpProxy.js';
import { handshake } from './support/rawWebSocket.js';
import { eventually } from './support/eventually.js';

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
    const refused = await handshake(wsOf(pusher.url), token, 15_000);
    assert.equal(refused.status, 503, JSON.stringify(refused));
    assert.equal(refused.body?.error?.code, 'UNAVAILABLE');
    assert.ok(Number(refused.headers['retry-after']) >= 1);
    const session = await fetch(`${pusher.url}/v1/session?token=${encodeURIComponent(token)}`);
    assert.equal(session.status, 503);
    assert.equal(((await session.json()) as { error: { code: string } }).error.code, 'UNAVAILABLE');
    // MongoDB back: the same token connects (the driver reconnects on its own).
    await proxy.open();
    await eventually(() => handshake(wsOf(pusher.url), token, 15_000), {
      what: 'a 101 handshake',
      until: (r) => r.status === 101,
      timeoutMs: 30_000,
      intervalMs: 250,
    });
    const ok = await fetch(`${pusher.url}/v1/session?token=${encodeURIComponent(token)}`);
    assert.equal(ok.status, 200);
    assert.equal(pusher.proc.exitCode, null);
  });
});
