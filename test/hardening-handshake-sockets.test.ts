import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readdirSync } from 'node:fs';
import { connectClient, startStack, type TestStack, wsOf } from './support/stack.js';

/** A WebSocket upgrade request written by hand (the token is whatever the test wants refused). */
const upgradeRequest = (path: string) =>
  `GET ${path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n`;

/** Sends an upgrade request and resets the connection (RST) at once, before the node's answer. */
function sendAndReset(port: number, path: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.write(upgradeRequest(path));
      setImmediate(() => {
        s.resetAndDestroy();
        resolve();
      });
    });
    s.on('error', () => resolve());
  });
}

/**
 * Sends an upgrade request the node refuses and never closes its own side: resolves with the
 * status line once the node's answer ended, and the socket (left open).
 */
function refusedAndHeld(port: number, path: string): Promise<{ status: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true }, () => socket.write(upgradeRequest(path)));
    socket.setTimeout(10_000, () => reject(new Error('no answer')));
    socket.on('data', (d: Buffer) => (text += d.toString()));
    socket.on('error', () => undefined);
    socket.once('end', () => resolve({ status: text.split('\r\n')[0]!, socket }));
  });
}

/** Polls `check` every 100 ms until it holds or `timeoutMs` passed; resolves with its last value. */
async function until(check: () => boolean, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  return check();
}

/** Open file descriptors of a process (Linux). */
const openFds = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

describe('hardening: the pusher survives peers that abandon or hold a refused handshake', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ env: { PUSHER_REFUSED_HANDSHAKE_LINGER_MS: '500' } });
  });
  after(async () => {
    await s?.stop();
  });

  test('handshakes reset by the peer before the refusal is written do not crash the node', { timeout: 60_000 }, async () => {
    const pusher = s.pushers[0]!;
    // A bad token (refused after an async check), a wrong path (refused at once), a good one.
    const { token } = await s.token('rst', 'phone');
    for (let i = 0; i < 150; i++) {
      await sendAndReset(pusher.port, '/v1/ws?token=garbage');
      await sendAndReset(pusher.port, '/elsewhere');
      await sendAndReset(pusher.port, `/v1/ws?token=${encodeURIComponent(token)}`);
    }
    assert.equal(pusher.proc.exitCode, null, `pusher exited:\n${pusher.output().slice(-2000)}`);
    assert.doesNotMatch(pusher.output(), /uncaught/);
    // Still serving: a normal client gets a message.
    const c = await connectClient(wsOf(pusher.url), (await s.token('normal', 'phone')).token);
    const r = await s.send({ to: { users: ['normal'] }, payload: 'still here' });
    await c.waitFor(1);
    assert.equal(c.messages[0]!.id, r.body.id);
    await c.close();
  });

  test('a refused handshake whose peer never closes is closed by the node after the linger', { timeout: 60_000 }, async () => {
    const pusher = s.pushers[0]!;
    const pid = pusher.proc.pid!;
    const before = openFds(pid);
    const held = await Promise.all(Array.from({ length: 200 }, (_, i) => refusedAndHeld(pusher.port, i % 2 ? '/v1/ws?token=garbage' : '/elsewhere')));
    try {
      for (const h of held) assert.match(h.status, /^HTTP\/1\.1 (401|404) /);
      // The peers still hold their side open: the node lets go of its own (a few descriptors of its own may come and go).
      assert.ok(await until(() => openFds(pid) < before + 20, 10_000), `descriptors: ${before} before, ${openFds(pid)} with 200 refused peers holding on`);
    } finally {
      for (const h of held) h.socket.destroy();
    }
  });
});
