import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, startStack, type TestStack, wsOf } from './support/stack.js';
import { startService } from './support/services.js';
import { handshake, maskedFrame, rawWebSocket, serverFrames } from './support/rawWebSocket.js';

describe('hardening #10: connection caps and handshake rate', () => {
  let s: TestStack;
  before(async () => {
    // Per-device cap at its default (1); per-user cap lowered to keep the test small.
    s = await startStack({ env: { PUSHER_MAX_SOCKETS_PER_USER: '3' } });
  });
  after(async () => {
    await s?.stop();
  });

  test('a new socket of the same device replaces the old one (kick frame, 4009); it still gets messages', { timeout: 30_000 }, async () => {
    const url = wsOf(s.pushers[0]!.url);
    const { token } = await s.token('dina', 'phone');
    const first = await connectClient(url, token);
    const second = await connectClient(url, token);
    const closed = await first.closed;
    assert.equal(closed.code, 4009);
    assert.equal(closed.reason, 'replaced by a newer connection of this device');
    assert.deepEqual(
      first.frames.find((f) => f.type === 'kick'),
      { type: 'kick', reason: 'replaced by a newer connection of this device' },
    );
    const r = await s.send({ to: { users: ['dina'] }, payload: 'to the new socket' });
    await second.waitFor(1);
    assert.equal(second.messages[0]!.id, r.body.id);
    assert.equal(first.messages.length, 0);
    await second.close();
  });

  test('a user over the per-user cap is refused with 429 TOO_MANY_CONNECTIONS; a reconnecting device is not', { timeout: 30_000 }, async () => {
    const url = wsOf(s.pushers[0]!.url);
    const devices = await Promise.all(['d1', 'd2', 'd3'].map(async (d) => connectClient(url, (await s.token('ugo', d)).token)));
    const refused = await handshake(url, (await s.token('ugo', 'd4')).token);
    assert.equal(refused.status, 429);
    assert.equal(refused.body.error.code, 'TOO_MANY_CONNECTIONS');
    assert.equal(typeof refused.body.error.message, 'string');
    // The same device again replaces its socket: the user's count does not grow.
    const d1again = await connectClient(url, (await s.token('ugo', 'd1')).token);
    assert.equal((await devices[0]!.closed).code, 4009);
    // Another user is not affected.
    const other = await connectClient(url, (await s.token('vera', 'd1')).token);
    await Promise.all([d1again.close(), devices[1]!.close(), devices[2]!.close(), other.close()]);
  });

  test('protocol pings count against the frame rate: a ping flood is closed with 4029', { timeout: 30_000 }, async () => {
    // Over a raw socket: the test reads exactly what the node wrote back, whatever a client library would make of it.
    const { socket, rest } = await rawWebSocket(wsOf(s.pushers[0]!.url), (await s.token('pinger', 'phone')).token);
    const received: Buffer[] = [rest];
    socket.on('data', (d: Buffer) => received.push(d));
    const ended = new Promise((resolve) => socket.once('close', resolve));
    // Paced in small bursts: ws itself drops a socket with many auto-pongs pending (a one-write flood);
    // a flood spread out in time is what the frame rate is for.
    let closed = false;
    void ended.then(() => (closed = true));
    for (let sent = 0; !closed && sent < 1000; sent += 10) {
      socket.write(Buffer.concat(Array.from({ length: 10 }, () => maskedFrame(0x9))));
      await new Promise((r) => setTimeout(r, 5));
    }
    await Promise.race([ended, new Promise((_, rej) => setTimeout(() => rej(new Error('a ping flood was not cut off')), 10_000))]);
    const frames = serverFrames(Buffer.concat(received));
    const close = frames.find((f) => f.opcode === 0x8);
    assert.ok(close, `no close frame among ${frames.length} frames: ${JSON.stringify(frames.map((f) => f.opcode))}`);
    assert.equal(close.payload.readUInt16BE(0), 4029);
    assert.equal(close.payload.subarray(2).toString(), 'frame rate exceeded');
    const pongs = frames.filter((f) => f.opcode === 0xa).length;
    const refusals = frames.filter((f) => f.opcode === 0x1 && JSON.parse(f.payload.toString()).code === 'RATE_LIMITED').length;
    assert.ok(pongs >= 200 && refusals > 20, `pongs ${pongs}, RATE_LIMITED frames ${refusals}`);
    socket.destroy();
  });

  test('handshakes per source address are rate-limited before the token is verified (429 + Retry-After)', { timeout: 40_000 }, async () => {
    // Loopback is exempt by default (local proxies, the bench); this node limits it.
    const limited = await startService('pusher', {
      PUSHER_HEARTBEAT_MS: '2000',
      ...s.env,
      NODE_ID: `${s.env.KAFKA_TOPIC_PREFIX.slice(0, -1)}-limited`,
      PUSHER_HANDSHAKE_EXEMPT: 'none',
      PUSHER_HANDSHAKE_RATE: '1',
      PUSHER_HANDSHAKE_BURST: '5',
    });
    s.pushers.push(limited);
    const url = wsOf(limited.url);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) statuses.push((await handshake(url, 'not-a-token')).status);
    assert.deepEqual(statuses, [401, 401, 401, 401, 401], 'within the burst, the token is checked');
    const over = await handshake(url, 'not-a-token');
    assert.equal(over.status, 429, 'over the rate, refused before the token is looked at');
    assert.equal(over.body.error.code, 'RATE_LIMITED');
    assert.ok(Number(over.headers['retry-after']) >= 1, `Retry-After: ${over.headers['retry-after']}`);
    const good = await handshake(url, (await s.token('walt', 'phone')).token);
    assert.equal(good.status, 429, 'a good token from the same address waits too');
    // The bucket refills (1/s): a later handshake gets through.
    await new Promise((r) => setTimeout(r, Number(over.headers['retry-after']) * 1000 + 100));
    const later = await connectClient(url, (await s.token('walt', 'phone')).token);
    await later.close();
  });
});
