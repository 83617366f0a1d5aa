import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { topicNames } from '../protocol/topics.js';
import { decodeRecord } from '../schemas/registry.js';
import type { Presence, Upstream } from '../schemas/types.js';
import { connectClient, startStack, wsOf, type TestStack } from './support/stack.js';
import { connect } from 'node:net';
import { once } from 'node:events';
import { eventually } from './support/eventually.js';
import { topicReader } from './support/topicReader.js';

describe('presence and upstream on Kafka', () => {
  let s: TestStack;
  const reader = topicReader('presence-test');
  const follow = reader.follow;
  before(async () => {
    s = await startStack({ env: { PUSHER_MAX_FRAME_BYTES: '4096' } });
  });
  after(async () => {
    await reader.close();
    await s?.stop();
  });

  test('connect, reconnect and disconnect publish presence in order with epochs; the API reflects it', { timeout: 60_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const events = await follow<Presence>(topics.presence, (v, h) => decodeRecord('Presence', v, h));
    const presence = async () =>
      (await (await fetch(`${s.collector.url}/v1/users/pat/presence`, { headers: { authorization: `Bearer ${s.apiKey}` } })).json()) as any;
    const { token } = await s.token('pat', 'phone');
    const first = await connectClient(wsOf(s.pushers[0]!.url), token);
    await eventually(async () => (await presence()).online === true, { what: 'presence API online' });
    assert.deepEqual(
      (await presence()).devices.map((d: any) => d.deviceId),
      ['phone'],
    );
    await first.close();
    const second = await connectClient(wsOf(s.pushers[0]!.url), token);
    await second.close();
    await eventually(() => events.filter((e) => e.user === 'pat').length >= 4, { what: 'four presence events' });
    const mine = events.filter((e) => e.user === 'pat').map((e) => `${e.state}@${e.epoch}`);
    // Each connection's ONLINE comes before its OFFLINE. The old connection's OFFLINE may land after
    // the new one's ONLINE (the server can notice a close late), which is why consumers apply an
    // event only if its epoch is not older than the last one applied for the device.
    assert.deepEqual([...mine].sort(), ['OFFLINE@1', 'OFFLINE@2', 'ONLINE@1', 'ONLINE@2']);
    assert.ok(mine.indexOf('ONLINE@1') < mine.indexOf('OFFLINE@1'), mine.join(' '));
    assert.ok(mine.indexOf('ONLINE@2') < mine.indexOf('OFFLINE@2'), mine.join(' '));
    assert.ok(mine.indexOf('ONLINE@1') < mine.indexOf('ONLINE@2'), mine.join(' '));
    let applied = { state: '', epoch: 0 };
    for (const e of events.filter((x) => x.user === 'pat')) if (e.epoch >= applied.epoch) applied = { state: e.state, epoch: e.epoch };
    assert.deepEqual(applied, { state: 'OFFLINE', epoch: 2 });
    await eventually(async () => (await presence()).online === false, { what: 'presence API offline' });
  });

  test('a connection closed as soon as it opens still publishes its ONLINE and then its OFFLINE', { timeout: 60_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const events = await follow<Presence>(topics.presence, (v, h) => decodeRecord('Presence', v, h));
    const { token } = await s.token('flick', 'phone');
    // Each sends its close frame with the handshake, so the pusher reads the close while it
    // is still writing the connection's route and epoch.
    for (let i = 0; i < 10; i++) await openAndCloseAtOnce(s.pushers[0]!.port, token);
    await eventually(() => events.filter((e) => e.user === 'flick').length >= 20, { what: 'twenty presence events', timeoutMs: 20_000 });
    const mine = events.filter((e) => e.user === 'flick').map((e) => `${e.state}@${e.epoch}`);
    const epochs = [...new Set(events.filter((e) => e.user === 'flick').map((e) => e.epoch))];
    assert.equal(epochs.length, 10, mine.join(' '));
    for (const epoch of epochs) {
      assert.ok(mine.indexOf(`ONLINE@${epoch}`) >= 0 && mine.indexOf(`ONLINE@${epoch}`) < mine.indexOf(`OFFLINE@${epoch}`), mine.join(' '));
    }
    assert.equal(mine.length, 20, mine.join(' '));
  });

  test('upstream frames reach push.upstream tagged with user and device; an oversized frame closes with 1009', { timeout: 60_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const records = await follow<Upstream>(topics.upstream, (v, h) => decodeRecord('Upstream', v, h));
    const c = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('quinn', 'tablet')).token);
    c.ws.send(JSON.stringify({ type: 'upstream', payload: { action: 'typing', chat: 'c-1' } }));
    await eventually(() => records.length >= 1, { what: 'upstream record' });
    assert.equal(records[0]!.user, 'quinn');
    assert.equal(records[0]!.device, 'tablet');
    assert.equal(records[0]!.app, s.app);
    assert.deepEqual(JSON.parse(records[0]!.payload), { action: 'typing', chat: 'c-1' });
    c.ws.send(JSON.stringify({ type: 'upstream', payload: 'x'.repeat(5000) }));
    assert.equal((await c.closed).code, 1009);
  });
});

/** One TCP write: the WebSocket upgrade request, then a masked close frame (1000); resolves when the server has answered and hung up. */
async function openAndCloseAtOnce(port: number, token: string): Promise<void> {
  const sock = connect(port, '127.0.0.1');
  await once(sock, 'connect');
  const mask = Buffer.from([1, 2, 3, 4]);
  const code = Buffer.from([0x03, 0xe8]).map((b, i) => b ^ mask[i]!);
  const request =
    `GET /v1/ws?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
    `Sec-WebSocket-Key: ${Buffer.alloc(16, 7).toString('base64')}\r\nSec-WebSocket-Version: 13\r\n\r\n`;
  let reply = '';
  sock.on('data', (d: Buffer) => (reply += d.toString('latin1')));
  sock.write(Buffer.concat([Buffer.from(request), Buffer.from([0x88, 0x82]), mask, Buffer.from(code)]));
  await once(sock, 'end'); // the server answers the close and hangs up
  sock.destroy();
  assert.match(reply, /^HTTP\/1\.1 101 /);
}
