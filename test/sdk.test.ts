import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { build } from 'esbuild';
import { WebSocket } from 'ws';
import { PushClient, type MessageFrame, type PushClientOptions, type PushEvents } from '../sdk/src/index.js';
import { backoffCap } from '../protocol/backoff.js';
import { createKafkaPublisher, createPublisher } from '../publisher/src/index.js';
import { SDK_BUNDLES } from '../sdk/build.js';
import { createDeliveryStore } from '../store/deliveryStore.js';
import { launchChromium } from './support/browser.js';
import { eventually } from './support/eventually.js';
import { stack as infra } from './support/env.js';
import { expiredToken, forgedToken } from './support/tokens.js';
import { startStack, wsOf, type TestStack } from './support/stack.js';

/** A PushClient in Node with everything it emits recorded, and awaitable. */
function sdkClient(opts: Omit<PushClientOptions, 'WebSocket'> & { WebSocket?: PushClientOptions['WebSocket'] }) {
  const client = new PushClient({ WebSocket, connectivity: null, backoff: { minMs: 50, maxMs: 500 }, ...opts });
  const messages: (MessageFrame & { at: number; url: string })[] = [];
  const log: { [K in keyof PushEvents]: (PushEvents[K] & { at: number })[] } = {
    connecting: [],
    connected: [],
    disconnected: [],
    message: [],
    error: [],
    kicked: [],
    state: [],
  };
  for (const name of Object.keys(log) as (keyof PushEvents)[]) client.on(name, (p) => void (log[name] as object[]).push({ ...(p as object), at: Date.now() }));
  client.on('message', (m) => void messages.push({ ...m, at: Date.now(), url: log.connected.at(-1)?.url ?? '' }));
  /** The `n`-th event of a kind since the client was made (1-based), waiting for it. */
  const nth = <K extends keyof PushEvents>(name: K, n = 1, timeoutMs = 15_000) =>
    eventually(() => log[name][n - 1], { timeoutMs, intervalMs: 10, what: `${String(name)} #${n}` }) as Promise<PushEvents[K] & { at: number }>;
  const received = (count: number, timeoutMs = 15_000) =>
    eventually(() => messages.length >= count, { timeoutMs, intervalMs: 10, what: `${count} messages (have ${messages.length})` });
  return { client, messages, log, nth, received };
}

describe('browser SDK (in Node) and publisher against a real stack', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ pushers: 2 });
  });
  after(async () => {
    await s?.stop();
  });

  test('connects via the token node list, receives, and auto-acks: a new connection does not get acked messages again', { timeout: 45_000 }, async () => {
    const { token, nodes } = await s.token('sdk-amy', 'phone');
    const c = sdkClient({ token, nodes });
    c.client.connect();
    const connected = await c.nth('connected');
    assert.equal(connected.url, nodes[0], 'the first node of the list');
    assert.equal(c.client.state, 'connected');
    const sent: string[] = [];
    for (const payload of ['one', 'two', 'three']) sent.push((await s.send({ to: { users: ['sdk-amy'] }, payload })).body.id);
    const transient = (await s.send({ to: { users: ['sdk-amy'] }, payload: 'typing', persistent: false })).body.id;
    await c.received(4);
    assert.deepEqual(
      c.messages.map((m) => m.id),
      [...sent, transient],
    );
    assert.deepEqual(
      c.messages.map((m) => m.payload),
      ['one', 'two', 'three', 'typing'],
    );

    const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
    await eventually(
      async () => {
        const { acked } = await store.deviceState(s.app, 'sdk-amy', 'phone');
        return sent.every((id) => acked.includes(id));
      },
      { what: 'the acks the SDK sent, stored by the server' },
    );
    c.client.close();
    assert.equal(c.client.state, 'closed');

    const again = sdkClient({ ...(await s.token('sdk-amy', 'phone')) });
    again.client.connect();
    await again.nth('connected');
    const marker = (await s.send({ to: { users: ['sdk-amy'] }, payload: 'marker' })).body.id;
    await again.received(1);
    assert.deepEqual(
      again.messages.map((m) => m.id),
      [marker],
      'acked messages did not come back',
    );
    again.client.close();
  });

  test(
    'SIGKILL of the pusher the client is on mid-stream: it reconnects to the other within the backoff bound, every message arrives once',
    { timeout: 90_000 },
    async (t) => {
      const victim = await s.startPusher('victim');
      const survivor = s.pushers[0]!;
      const { token } = await s.token('sdk-kim', 'laptop');
      const backoff = { minMs: 100, maxMs: 1000 };
      // Counts the message frames on the wire, to see how many redeliveries the SDK dropped.
      let frames = 0;
      const Counting = class extends WebSocket {
        constructor(url: string) {
          super(url);
          this.on('message', (d) => void (String(d).startsWith('{"type":"message"') && frames++));
        }
      };
      const c = sdkClient({ token, nodes: [wsOf(victim.url), wsOf(survivor.url)], backoff, WebSocket: Counting });
      c.client.connect();
      assert.equal((await c.nth('connected')).url, wsOf(victim.url));

      const sent: string[] = [];
      let sending = true;
      const sender = (async () => {
        for (let i = 0; sending && i < 400; i++) {
          const r = await s.send({ to: { users: ['sdk-kim'] }, payload: { i } });
          assert.equal(r.status, 202, JSON.stringify(r.body));
          sent.push(r.body.id);
          await sleep(10);
        }
      })();
      try {
        await c.received(15);
        const killedAt = Date.now();
        await victim.stop('SIGKILL');
        const back = await c.nth('connected', 2, 20_000);
        assert.equal(back.url, wsOf(survivor.url));
        const sentAtReconnect = sent.length;
        await eventually(() => sent.length >= sentAtReconnect + 30, { what: 'messages sent after the reconnect', timeoutMs: 30_000 });
        sending = false;
        await sender;
        await eventually(() => sent.every((id) => c.messages.some((m) => m.id === id)), { what: 'every sent message received', timeoutMs: 30_000 }).catch(
          () => undefined,
        );

        const counts = new Map<string, number>();
        for (const m of c.messages) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
        assert.deepEqual(
          sent.filter((id) => !counts.has(id)),
          [],
          'missed messages',
        );
        assert.deepEqual(
          [...counts].filter(([, n]) => n > 1),
          [],
          'messages emitted twice',
        );
        assert.equal(c.messages.length, sent.length);

        // Each wait was within its full-jitter window, and the whole outage within their sum plus connect time.
        const drops = c.log.disconnected.filter((d) => d.at >= killedAt && d.at <= back.at);
        assert.ok(drops.length >= 1);
        drops.forEach((d, i) => assert.ok(d.willReconnect && d.delayMs >= 0 && d.delayMs <= backoffCap(backoff, i), `wait #${i}: ${d.delayMs} ms`));
        const bound = drops.reduce((sum, _d, i) => sum + backoffCap(backoff, i), 0) + 2000;
        const reconnectMs = back.at - killedAt;
        assert.ok(reconnectMs <= bound, `reconnected after ${reconnectMs} ms, bound ${bound} ms`);
        const firstOnSurvivor = c.messages.find((m) => m.url === back.url)!;
        t.diagnostic(
          `kill -> reconnected: ${reconnectMs} ms (${drops.length} failed attempt(s), delays ${drops.map((d) => d.delayMs).join('+')} ms); kill -> first message on the new node: ${firstOnSurvivor.at - killedAt} ms; ${sent.length} messages, ${sentAtReconnect} sent before the reconnect, ${frames - c.messages.length} redelivered copies dropped`,
        );
      } finally {
        sending = false;
        await sender.catch(() => undefined);
        c.client.close();
        s.pushers.splice(s.pushers.indexOf(victim), 1);
      }
    },
  );

  test('a forged token or an expired one without getToken: AUTH_REFUSED, closed, no further attempts', { timeout: 30_000 }, async () => {
    const { nodes } = await s.token('sdk-mal', 'd');
    const forged = await forgedToken(s, 'sdk-mal', 'd');
    for (const [token, code] of [
      [forged, 'TOKEN_INVALID'],
      [await expiredToken(s, 'sdk-mal', 'd'), 'TOKEN_EXPIRED'],
    ] as const) {
      let sockets = 0;
      const c = sdkClient({
        token,
        nodes,
        backoff: { minMs: 20, maxMs: 100 },
        WebSocket: class extends WebSocket {
          constructor(url: string) {
            super(url);
            sockets++;
          }
        },
      });
      c.client.connect();
      const err = await c.nth('error');
      assert.equal(err.code, 'AUTH_REFUSED');
      assert.match(err.message, new RegExp(code));
      assert.equal(c.client.state, 'closed');
      // Nothing to await for "nothing happens": give it many backoff windows.
      await sleep(600);
      assert.equal(sockets, 1, 'no attempt after the refusal');
      assert.equal(c.log.connecting.length, 1);
      assert.deepEqual(
        c.log.disconnected.map((d) => d.willReconnect),
        [false],
      );
    }
  });

  test('an expired token is replaced through getToken, and the client connects with the fresh one', { timeout: 30_000 }, async () => {
    let calls = 0;
    const c = sdkClient({
      token: await expiredToken(s, 'sdk-eve', 'tablet'),
      nodes: [wsOf(s.pushers[1]!.url)],
      getToken: () => {
        calls++;
        return s.token('sdk-eve', 'tablet');
      },
    });
    c.client.connect();
    await c.nth('connected');
    assert.equal(calls, 1);
    assert.equal(c.log.error.length, 0);
    const { body } = await s.send({ to: { users: ['sdk-eve'] }, payload: 'fresh' });
    await c.received(1);
    assert.equal(c.messages[0]!.id, body.id);
    c.client.close();
  });

  test('publisher: an HTTP send and a Kafka event both reach a connected SDK client', { timeout: 60_000 }, async () => {
    const c = sdkClient(await s.token('sdk-pat', 'phone'));
    c.client.connect();
    await c.nth('connected');
    const http = createPublisher({ collectorUrl: s.collector.url, apiKey: s.apiKey });
    const viaHttp = await http.send({ to: { users: ['sdk-pat'] }, payload: { via: 'http' }, collapseKey: 'k1' });
    assert.equal(viaHttp.status, 'accepted');
    await c.received(1);
    assert.deepEqual([c.messages[0]!.id, c.messages[0]!.payload, c.messages[0]!.collapseKey], [viaHttp.id, { via: 'http' }, 'k1']);

    const kafka = createKafkaPublisher({ brokers: infra.kafkaBrokers, topicPrefix: s.env.KAFKA_TOPIC_PREFIX });
    try {
      const produced = await kafka.send({ app: s.app, to: { users: ['sdk-pat'] }, payload: { via: 'kafka' }, ttlSeconds: 600 });
      assert.match(produced.idempotencyKey, /^[0-9a-f-]{36}$/);
      await c.received(2, 30_000);
      assert.deepEqual(c.messages[1]!.payload, { via: 'kafka' });
    } finally {
      await kafka.close();
      c.client.close();
    }
  });

  test(
    'publisher: a retry after a lost answer carries the same idempotency key and gets the same id; the message arrives once',
    { timeout: 30_000 },
    async () => {
      // A proxy in front of the collector that forwards the first request but loses its answer.
      const seen: { key: string; id?: string }[] = [];
      const proxy = http.createServer(async (req, res) => {
        const chunks: Buffer[] = [];
        for await (const chunk of req) chunks.push(chunk as Buffer);
        const body = Buffer.concat(chunks).toString();
        const upstream = await fetch(s.collector.url + req.url, {
          method: 'POST',
          headers: { authorization: req.headers.authorization!, 'content-type': 'application/json' },
          body,
        });
        const answer = await upstream.text();
        seen.push({ key: JSON.parse(body).idempotencyKey, id: JSON.parse(answer).id });
        if (seen.length === 1) res.socket?.destroy();
        else res.writeHead(upstream.status, { 'content-type': 'application/json' }).end(answer);
      });
      await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
      const c = sdkClient(await s.token('sdk-ida', 'phone'));
      try {
        c.client.connect();
        await c.nth('connected');
        const publisher = createPublisher({
          collectorUrl: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
          apiKey: s.apiKey,
          backoff: { minMs: 10, maxMs: 50 },
        });
        const r = await publisher.send({ to: { users: ['sdk-ida'] }, payload: 'once' });
        assert.equal(seen.length, 2);
        assert.equal(seen[0]!.key, seen[1]!.key, 'the retry reused the key');
        assert.equal(r.id, seen[0]!.id, 'the id the collector gave the lost first attempt');
        assert.equal(r.duplicate, true);
        const marker = await createPublisher({ collectorUrl: s.collector.url, apiKey: s.apiKey }).send({ to: { users: ['sdk-ida'] }, payload: 'marker' });
        await eventually(() => c.messages.some((m) => m.id === marker.id), { what: 'the marker' });
        assert.deepEqual(
          c.messages.map((m) => m.payload),
          ['once', 'marker'],
          'stored and delivered once',
        );
      } finally {
        c.client.close();
        proxy.closeAllConnections();
        await new Promise((r) => proxy.close(r));
      }
    },
  );

  test(
    'in headless Chromium the bundled SDK receives and acks, tells a refused token from a dead link, and reconnects when back online',
    { timeout: 90_000 },
    async () => {
      const [bundle] = (await build({ ...SDK_BUNDLES.iife, write: false })).outputFiles!;
      const site = http.createServer((req, res) =>
        req.url === '/push-sdk.min.js'
          ? res.writeHead(200, { 'content-type': 'text/javascript' }).end(bundle!.text)
          : res.writeHead(200, { 'content-type': 'text/html' }).end(PAGE),
      );
      await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
      const browser = await launchChromium();
      try {
        const context = await browser.newContext();
        const tab = await context.newPage();
        await tab.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`);
        const events = (name: string) => tab.evaluate((n) => (window as any).log.filter((e: any) => e.name === n).map((e: any) => e.p), name);
        const waitEvents = (name: string, count: number) =>
          tab.waitForFunction(([n, c]) => (window as any).log.filter((e: any) => e.name === n).length >= (c as number), [name, count] as const, {
            timeout: 15_000,
          });

        await tab.evaluate((opts) => (window as any).start(opts), { ...(await s.token('sdk-web', 'chrome')), backoff: { minMs: 50, maxMs: 500 } });
        await waitEvents('connected', 1);
        const first = (await s.send({ to: { users: ['sdk-web'] }, payload: { text: 'hello browser' } })).body.id;
        await waitEvents('message', 1);
        assert.deepEqual(
          (await events('message')).map((m: any) => [m.id, m.payload.text]),
          [[first, 'hello browser']],
        );
        const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
        await eventually(async () => (await store.deviceState(s.app, 'sdk-web', 'chrome')).acked.includes(first), { what: 'the browser ack stored' });

        // offline closes the socket and waits; online reconnects at once and the message sent meanwhile arrives.
        await context.setOffline(true);
        // Chromium may close the socket (1006, a retry planned) just before it fires `offline`;
        // either way the SDK must end up waiting for the network rather than retrying.
        await tab.waitForFunction(() => (window as any).log.some((e: any) => e.name === 'disconnected' && e.p.reason === 'offline'), undefined, {
          timeout: 15_000,
        });
        assert.deepEqual(
          (await events('disconnected')).find((d: any) => d.reason === 'offline'),
          { code: 1006, reason: 'offline', willReconnect: true, delayMs: -1 },
        );
        const whileOffline = (await s.send({ to: { users: ['sdk-web'] }, payload: { text: 'while offline' } })).body.id;
        await context.setOffline(false);
        await waitEvents('connected', 2);
        await waitEvents('message', 2);
        assert.deepEqual(
          (await events('message')).map((m: any) => m.id),
          [first, whileOffline],
        );
        await tab.evaluate(() => (window as any).client.close());

        // A forged token: the browser sees only a failed open (1006); the session check tells it apart.
        const forged = await forgedToken(s, 'sdk-web', 'chrome');
        const refusedTab = await context.newPage();
        await refusedTab.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`);
        await refusedTab.evaluate((opts) => (window as any).start(opts), { token: forged, nodes: (await s.token('sdk-web', 'chrome')).nodes });
        await refusedTab.waitForFunction(() => (window as any).client.state === 'closed', undefined, { timeout: 15_000 });
        const log = await refusedTab.evaluate(() => (window as any).log);
        assert.deepEqual(
          log.filter((e: any) => e.name === 'error').map((e: any) => [e.p.code, /TOKEN_INVALID/.test(e.p.message)]),
          [['AUTH_REFUSED', true]],
        );
        assert.deepEqual(
          log.filter((e: any) => e.name === 'disconnected').map((e: any) => [e.p.code, e.p.willReconnect]),
          [[1006, false]],
        );
      } finally {
        await browser.close();
        site.closeAllConnections();
        await new Promise((r) => site.close(r));
      }
    },
  );
});

// The bundle as a page would load it. The page records every event in `window.log`.
const PAGE = `<!doctype html><meta charset="utf-8"><title>sdk</title><script src="/push-sdk.min.js"></script>
<script>
  window.log = [];
  window.start = (opts) => {
    const client = new PushSDK.PushClient(opts);
    for (const name of ['connected', 'disconnected', 'message', 'error', 'state']) client.on(name, (p) => { window.log.push({ name, p }); });
    client.connect();
    window.client = client;
  };
</script>`;
