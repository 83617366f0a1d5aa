import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertOnlyMarker, connectClient, startStack, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { createDeliveryStore } from '../store/deliveryStore.js';

describe('clients that misbehave are bounded', () => {
  let s: TestStack;
  let wsUrl: string;
  before(async () => {
    s = await startStack({ env: { PUSHER_MAX_BUFFERED_BYTES: '65536', PUSHER_MAX_DELIVERY_ATTEMPTS: '2', PUSHER_HEARTBEAT_MS: '60000' } });
    wsUrl = s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws';
  });
  after(async () => {
    await s?.stop();
  });

  test('a client that stops reading is cut off with 4008 instead of growing server memory', { timeout: 60_000 }, async () => {
    const c = await connectClient(wsUrl, (await s.token('slow', 'phone')).token);
    (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket.pause();
    const big = 'x'.repeat(15_000);
    let sent = 0;
    while (sent < 2000) {
      const batch = await Promise.all(
        Array.from({ length: 25 }, (_, i) => s.send({ to: { users: ['slow'] }, payload: { i: sent + i, big }, persistent: false })),
      );
      assert.ok(batch.every((r) => r.status === 202));
      sent += batch.length;
      const metrics = await (await fetch(`${s.pushers[0]!.url}/metrics`)).text();
      if (/push_closes_total\{code="4008"/.test(metrics)) break;
    }
    (c.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const closed = await c.closed;
    // The close frame waits behind the unread backlog; if the client still does not
    // read it within the grace period the server drops the TCP connection (1006).
    assert.ok([4008, 1006].includes(closed.code), `close code ${closed.code}`);
    const metrics = await (await fetch(`${s.pushers[0]!.url}/metrics`)).text();
    assert.match(metrics, /push_closes_total\{code="4008",service="pusher"\} 1/);
    assert.ok(c.messages.length < sent, `received ${c.messages.length} before the cut-off`);
  });

  test('a client that never acks gets a message on a bounded number of connects, then it is parked', { timeout: 60_000 }, async () => {
    const r = await s.send({ to: { users: ['noack'] }, payload: 'ack me' });
    const { token } = await s.token('noack', 'phone');
    for (let attempt = 1; attempt <= 2; attempt++) {
      const c = await connectClient(wsUrl, token);
      await c.waitFor(1);
      assert.equal(c.messages[0]!.id, r.body.id, `delivered on connect ${attempt}`);
      await c.close();
    }
    const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
    await eventually(async () => (await store.deviceState(s.app, 'noack', 'phone')).tries[r.body.id] === 2, { what: 'message parked for the device' });
    const c = await connectClient(wsUrl, token);
    const marker = await assertOnlyMarker(s, c, 'noack', { message: 'the parked message is not sent again' });
    await c.close();
    // Another device of the same user is unaffected by this device's parking.
    const other = await connectClient(wsUrl, (await s.token('noack', 'tablet')).token);
    await other.waitFor(2);
    assert.deepEqual(
      other.messages.map((m) => m.id),
      [r.body.id, marker],
    );
    await other.close();
  });
});
