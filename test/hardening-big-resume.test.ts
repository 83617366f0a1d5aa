import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { connectClient, startStack, type TestClient, type TestStack, wsOf } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { createDeliveryStore } from '../store/deliveryStore.js';
import { MAX_ACK_IDS } from '../protocol/codes.js';

const STORED = 300;
const PAYLOAD_BYTES = 60_000;
const MAX_ATTEMPTS = 4;
const SLOW_CONNECTS = 3;

const socketOf = (c: TestClient) => (c.ws as unknown as { _socket: { pause(): void; resume(): void } })._socket;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function metric(s: TestStack, pattern: RegExp): Promise<number> {
  const text = await (await fetch(`${s.pushers[0]!.url}/metrics`)).text();
  return text
    .split('\n')
    .filter((l) => pattern.test(l))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
}

describe('a big resume on a slow link is paced by the link, not cut off, and nothing unseen is parked', () => {
  let s: TestStack;
  const ids: string[] = [];
  before(async () => {
    s = await startStack({
      limits: { maxPayloadBytes: 65_536 },
      // A small send queue makes the old synchronous page write trip the 4008 cut-off at once.
      env: {
        PUSHER_MAX_BUFFERED_BYTES: String(256 * 1024),
        PUSHER_MAX_DELIVERY_ATTEMPTS: String(MAX_ATTEMPTS),
        PUSHER_OFFLINE_PAGE_SIZE: String(STORED),
        PUSHER_HEARTBEAT_MS: '60000',
      },
    });
  });
  after(async () => {
    await s?.stop();
  });

  test(
    `${STORED} stored messages of 60 KB: a slow reader connects ${SLOW_CONNECTS} times, then a normal client gets them all in order`,
    { timeout: 240_000 },
    async () => {
      const big = 'x'.repeat(PAYLOAD_BYTES);
      for (let i = 0; i < STORED; i += 10) {
        const batch = await Promise.all(Array.from({ length: 10 }, (_, j) => s.send({ to: { users: ['big'] }, payload: { i: i + j, big } })));
        for (const r of batch) {
          assert.equal(r.status, 202, JSON.stringify(r.body));
          ids.push(r.body.id);
        }
      }
      ids.sort();
      // Every message stored for the device before anyone connects.
      const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
      await eventually(
        async () =>
          (await store.pendingFor([{ app: s.app, user: 'big', device: 'phone', afterId: ids.at(-2)!, limit: 10 }], { maxAttempts: MAX_ATTEMPTS }))[0]!
            .length === 1,
        {
          what: 'the last message in the inbox',
          timeoutMs: 60_000,
          intervalMs: 250,
        },
      );

      const { token } = await s.token('big', 'phone');
      for (let connect = 1; connect <= SLOW_CONNECTS; connect++) {
        const c = await connectClient(wsOf(s.pushers[0]!.url), token);
        let closedByServer: number | undefined;
        void c.closed.then(({ code }) => (closedByServer = code));
        // A slow link: nothing read for a while, then short reads with pauses in between.
        socketOf(c).pause();
        await sleep(1500);
        while (c.messages.length < 20 && closedByServer === undefined) {
          socketOf(c).resume();
          await sleep(10);
          socketOf(c).pause();
          await sleep(90);
        }
        assert.equal(closedByServer, undefined, `connect ${connect}: closed by the server with ${closedByServer}`);
        assert.equal(c.ws.readyState, WebSocket.OPEN);
        assert.deepEqual(
          c.messages.map((m) => m.id),
          ids.slice(0, c.messages.length),
          `connect ${connect}: in order from the first`,
        );
        // The device loses its link: whatever was still queued for it never reached it.
        c.ws.terminate();
        await c.closed;
      }
      assert.equal(await metric(s, /^push_closes_total\{code="4008"/), 0, 'no slow-consumer cut-off');
      // Attempts are counted when written, after the socket drained: wait until the last connection's are in.
      await eventually(async () => (await store.deviceState(s.app, 'big', 'phone')).tries[ids[0]!] === SLOW_CONNECTS, {
        what: 'attempts of the last connect recorded',
      });
      const { tries } = await store.deviceState(s.app, 'big', 'phone');
      assert.equal(await metric(s, /^push_parked_total/), 0, 'nothing parked');
      assert.ok(
        Object.values(tries).every((n) => n < MAX_ATTEMPTS),
        'no message reached the attempt limit',
      );
      // Only what reached the socket counts: the messages the slow link never got near have no attempt.
      const tried = ids.filter((id) => tries[id]);
      // (One page holds them all, so counting the page instead of the writes would count every one;
      // what the kernel's socket buffers took counts, ~10 MB on loopback here.)
      assert.ok(tried.length <= STORED - 50, `${tried.length} of ${STORED} messages counted as attempted`);
      assert.deepEqual(tried, ids.slice(0, tried.length), 'attempts count a prefix, in order');

      // A normal client on the same device gets every one, in order, and acks them (in batches, as the SDK does).
      const normal = await connectClient(wsOf(s.pushers[0]!.url), token);
      await normal.waitFor(STORED, 60_000);
      assert.deepEqual(
        normal.messages.map((m) => m.id),
        ids,
      );
      assert.equal(normal.ws.readyState, WebSocket.OPEN, 'still connected after the resume');
      for (let i = 0; i < ids.length; i += MAX_ACK_IDS) normal.ack(ids.slice(i, i + MAX_ACK_IDS));
      await eventually(async () => (await store.deviceState(s.app, 'big', 'phone')).acked.length === STORED, { what: 'every message acked' });
      await normal.close();
      assert.equal(await metric(s, /^push_closes_total\{code="4008"/), 0, 'no slow-consumer cut-off');
    },
  );
});
