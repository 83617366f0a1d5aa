import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { startStack, type TestStack, wsOf } from './support/stack.js';
import { startService, type RunningService } from './support/services.js';
import { stack as infra } from './support/env.js';

/** A TCP proxy to MongoDB that the test can cut and restore (an outage for one pusher only). */
function mongoProxy(target: URL) {
  const sockets = new Set<net.Socket>();
  let server: net.Server | undefined;
  let port = 0;
  const listen = () =>
    new Promise<void>((resolve) => {
      server = net.createServer((client) => {
        const upstream = net.connect(Number(target.port || 27017), target.hostname);
        for (const s of [client, upstream]) {
          sockets.add(s);
          s.on('error', () => undefined);
          s.once('close', () => {
            sockets.delete(s);
            client.destroy();
            upstream.destroy();
          });
        }
        client.pipe(upstream).pipe(client);
      });
      server.listen(port, '127.0.0.1', () => {
        port = (server!.address() as net.AddressInfo).port;
        resolve();
      });
    });
  return {
    listen,
    get port() {
      return port;
    },
    cut: () =>
      new Promise<void>((resolve) => {
        server!.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}

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
      res.on('end', () => resolve({ status: res.statusCode ?? 0, code: text ? JSON.parse(text).error?.code : undefined, retryAfter: res.headers['retry-after'] as string | undefined }));
    });
    req.on('timeout', () => req.destroy(new Error('handshake timed out')));
    req.on('error', reject);
  });
}

describe('hardening: a MongoDB outage on the pusher is 503 (retry), never 401 (the SDK gives up for good)', () => {
  let s: TestStack;
  let pusher: RunningService;
  const proxy = mongoProxy(new URL(infra.mongoUrl));
  before(async () => {
    s = await startStack({ pushers: 0 });
    await proxy.listen();
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
    await proxy.listen();
    const deadline = Date.now() + 30_000;
    let last = refused;
    while (Date.now() < deadline && (last = await handshake(wsOf(pusher.url), token)).status !== 101) await new Promise((r) => setTimeout(r, 250));
    assert.equal(last.status, 101, JSON.stringify(last));
    const ok = await fetch(`${pusher.url}/v1/session?token=${encodeURIComponent(token)}`);
    assert.equal(ok.status, 200);
    assert.equal(pusher.proc.exitCode, null);
  });
});
