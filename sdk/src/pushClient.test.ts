import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../../test/support/eventually.js';
import { PushClient } from './pushClient.js';
import type { PushEvents } from './events.js';
import type { PushClientOptions } from './options.js';
import type { WebSocketLike } from './socket.js';

// An in-memory WebSocket and the "server" that controls it: each test decides
// what every connection attempt does, and reads what the client sent.
type Behaviour = 'welcome' | 'open' | 'refuse' | 'hang';

class FakeServer {
  readonly sockets: FakeSocket[] = [];
  /** What the next connection attempts do, by node URL; default `welcome`. */
  readonly behaviour = new Map<string, Behaviour>();
  private waiters: (() => void)[] = [];

  accept(s: FakeSocket): void {
    this.sockets.push(s);
    const b = this.behaviour.get(s.node) ?? 'welcome';
    if (b === 'refuse') s.serverClose(1006);
    else if (b === 'open' || b === 'welcome') s.serverOpen(b === 'welcome');
    for (const w of this.waiters.splice(0)) w();
  }

  /** Resolves with the n-th socket (1-based) once the client has opened it. */
  async socket(n: number): Promise<FakeSocket> {
    while (this.sockets.length < n) await new Promise<void>((r) => this.waiters.push(r));
    return this.sockets[n - 1]!;
  }

  get last(): FakeSocket {
    return this.sockets.at(-1)!;
  }

  /** The frames of a type the client sent over all its sockets. */
  sent(type: string): any[] {
    return this.sockets.flatMap((s) => s.sent.filter((f) => f.type === type));
  }
}

class FakeSocket implements WebSocketLike {
  readyState = 0;
  onopen: any = null;
  onmessage: any = null;
  onclose: any = null;
  onerror: any = null;
  readonly sent: any[] = [];
  readonly node: string;
  readonly token: string;

  constructor(
    readonly url: string,
    private readonly server: FakeServer,
  ) {
    const u = new URL(url);
    this.token = u.searchParams.get('token') ?? '';
    u.search = '';
    this.node = u.toString();
    queueMicrotask(() => server.accept(this));
  }

  send(data: string): void {
    assert.equal(this.readyState, 1, 'send on an open socket only');
    this.sent.push(JSON.parse(data));
  }

  close(code = 1000, reason = ''): void {
    if (this.readyState >= 2) return;
    this.readyState = 3;
    queueMicrotask(() => this.onclose?.({ code, reason }));
  }

  serverOpen(welcome = true): void {
    this.readyState = 1;
    this.onopen?.({});
    if (welcome) this.frame({ type: 'welcome', nodeId: this.node, connId: `c${this.server.sockets.length}`, heartbeatMs: 60_000 });
  }

  frame(f: object): void {
    this.onmessage?.({ data: JSON.stringify(f) });
  }

  serverClose(code: number, reason = ''): void {
    if (this.readyState === 3) return;
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
}

const A = 'ws://a.test/v1/ws';
const B = 'ws://b.test/v1/ws';
const id = (n: number) => `01JXA3K4Q9W2M8T6ZP0R5C${String(n).padStart(4, '0')}`;
const msg = (n: number, persistent = true) => ({ type: 'message', id: id(n), persistent, sentAt: '', expiresAt: '', payload: { n } });

/** `/v1/session` answers: 200 unless a token is listed with its 401 code. */
const sessionFetch = (verdicts: Record<string, string> = {}, calls: string[] = []): typeof fetch =>
  (async (url: string | URL | Request) => {
    const token = new URL(String(url)).searchParams.get('token') ?? '';
    calls.push(token);
    const code = verdicts[token];
    return code
      ? new Response(JSON.stringify({ error: { code, message: code.toLowerCase() } }), { status: 401 })
      : new Response(JSON.stringify({ accepting: true }), { status: 200 });
  }) as typeof fetch;

const clients: PushClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.close();
});

function setup(opts: Partial<PushClientOptions> = {}) {
  const server = new FakeServer();
  const client = new PushClient({
    token: 'tok-1',
    nodes: [A, B],
    WebSocket: class extends FakeSocket {
      constructor(url: string) {
        super(url, server);
      }
    },
    fetch: sessionFetch(),
    backoff: { minMs: 1, maxMs: 4 },
    ackBatchMs: 1,
    ...opts,
  });
  clients.push(client);
  const seen: { [K in keyof PushEvents]?: PushEvents[K][] } = {};
  for (const name of ['connecting', 'connected', 'disconnected', 'message', 'error', 'kicked', 'state'] as const) {
    client.on(name, (p) => void (seen[name] ??= [] as never[]).push(p as never));
  }
  /** The `count`-th `name` event since the client was created, waiting for it if need be. */
  const next = <K extends keyof PushEvents>(name: K, count = 1) =>
    new Promise<PushEvents[K]>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`no ${String(name)} #${count}`)), 2000);
      const check = () => {
        const list = seen[name] as PushEvents[K][] | undefined;
        if (list && list.length >= count) return (clearTimeout(t), off(), resolve(list[count - 1]!));
      };
      const off = client.on(name, () => queueMicrotask(check));
      check();
    });
  return { server, client, seen, next };
}

describe('PushClient against an in-memory WebSocket', () => {
  test('reconnects after a drop: the same node first, then the next one', async () => {
    const { server, client, next, seen } = setup();
    client.connect();
    assert.deepEqual(await next('connected'), { nodeId: A, connId: 'c1', url: A });
    server.behaviour.set(A, 'refuse');
    (await server.socket(1)).serverClose(1006);
    const second = await next('connected', 2);
    assert.equal(second.url, B);
    assert.deepEqual(
      server.sockets.map((s) => s.node),
      [A, A, B],
      'back to the node that worked, then rotation',
    );
    const drops = seen.disconnected!;
    assert.deepEqual(
      drops.map((d) => [d.code, d.willReconnect]),
      [
        [1006, true],
        [1006, true],
      ],
    );
    assert.ok(
      drops.every((d) => d.delayMs >= 0 && d.delayMs <= 4),
      'delays within the backoff cap',
    );
    assert.deepEqual(
      seen.connecting!.map((c) => c.attempt),
      [0, 1, 2],
      'retries since the last success',
    );
    assert.equal(client.state, 'connected');
  });

  test('groups are re-subscribed after every reconnect; an unsubscribed one is not', async () => {
    const { server, client, next } = setup();
    client.subscribe('news');
    client.subscribe('sport');
    client.connect();
    await next('connected');
    assert.deepEqual(
      server.sockets[0]!.sent.filter((f) => f.type === 'subscribe').map((f) => f.group),
      ['news', 'sport'],
    );
    server.last.serverClose(1006);
    await next('connected', 2);
    assert.deepEqual(
      server.sockets[1]!.sent.map((f) => [f.type, f.group]),
      [
        ['subscribe', 'news'],
        ['subscribe', 'sport'],
      ],
    );
    client.unsubscribe('sport');
    assert.deepEqual(server.sockets[1]!.sent.at(-1), { type: 'unsubscribe', group: 'sport' });
    server.sockets[1]!.frame({ type: 'error', code: 'NOT_AVAILABLE', message: 'groups are not available' });
    assert.equal((await next('error')).code, 'NOT_AVAILABLE');
    server.last.serverClose(1001);
    await next('connected', 3);
    assert.deepEqual(
      server.sockets[2]!.sent.filter((f) => f.type === 'subscribe').map((f) => f.group),
      ['news'],
    );
    assert.deepEqual(client.subscriptions, ['news']);
  });

  test('de-duplicates across reconnects: a redelivered message is acked again, not emitted', async () => {
    const { server, client, next, seen } = setup();
    client.connect();
    await next('connected');
    server.last.frame(msg(1));
    server.last.frame(msg(2, false));
    await next('message', 2);
    await eventually(() => server.sent('ack').length === 1, { timeoutMs: 2000, intervalMs: 1 });
    assert.deepEqual(server.sent('ack'), [{ type: 'ack', ids: [id(1)] }], 'only the persistent one is acked');
    server.last.serverClose(1006);
    await next('connected', 2);
    server.last.frame(msg(1));
    server.last.frame(msg(2, false));
    server.last.frame(msg(3));
    await next('message', 3);
    await eventually(() => server.sockets[1]!.sent.some((f) => f.type === 'ack'), { timeoutMs: 2000, intervalMs: 1 });
    assert.deepEqual(
      seen.message!.map((m) => m.id),
      [id(1), id(2), id(3)],
      'each id emitted once',
    );
    assert.deepEqual(
      server.sockets[1]!.sent.filter((f) => f.type === 'ack')
        .flatMap((f) => f.ids)
        .sort(),
      [id(1), id(3)],
    );
  });

  test('a kick stops the client for good', async () => {
    const { server, client, next, seen } = setup();
    client.connect();
    await next('connected');
    server.last.frame({ type: 'kick', reason: 'signed in elsewhere' });
    assert.deepEqual(await next('kicked'), { reason: 'signed in elsewhere' });
    assert.equal(client.state, 'closed');
    assert.equal(server.last.readyState, 3, 'the client closed the socket');
    await sleep(30); // several backoff windows (max 4 ms): nothing may happen
    assert.equal(server.sockets.length, 1, 'no reconnect');
    assert.equal(seen.disconnected!.at(-1)!.willReconnect, false);
  });

  test('close 4009 without a kick frame also stops it, and 4002 too', async () => {
    for (const code of [4009, 4002]) {
      const { server, client, next } = setup();
      client.connect();
      await next('connected');
      server.last.serverClose(code, 'bye');
      const d = await next('disconnected');
      assert.deepEqual([d.code, d.willReconnect], [code, false]);
      if (code === 4009) assert.deepEqual(await next('kicked'), { reason: 'bye' });
      else assert.equal((await next('error')).code, 'CLOSED_BY_SERVER');
      assert.equal(client.state, 'closed');
      await sleep(20);
      assert.equal(server.sockets.length, 1);
    }
  });

  test('a refused token (session says TOKEN_INVALID) ends in AUTH_REFUSED with no retry', async () => {
    const calls: string[] = [];
    const { server, client, next } = setup({ fetch: sessionFetch({ 'tok-1': 'TOKEN_INVALID' }, calls) });
    server.behaviour.set(A, 'refuse');
    client.connect();
    const err = await next('error');
    assert.equal(err.code, 'AUTH_REFUSED');
    assert.match(err.message, /TOKEN_INVALID/);
    assert.equal(client.state, 'closed');
    await sleep(20);
    assert.equal(server.sockets.length, 1);
    assert.deepEqual(calls, ['tok-1']);
  });

  test('an expired token (per the session check) is renewed with getToken, with its node list', async () => {
    let n = 1;
    const { server, client, next } = setup({
      fetch: sessionFetch({ 'tok-1': 'TOKEN_EXPIRED' }),
      getToken: async () => ({ token: `tok-${++n}`, nodes: [B, A] }),
    });
    server.behaviour.set(A, 'refuse');
    client.connect();
    assert.equal((await next('connected')).url, B);
    assert.deepEqual(
      server.sockets.map((s) => [s.node, s.token]),
      [
        [A, 'tok-1'],
        [B, 'tok-2'],
      ],
    );
  });

  test('without getToken an expired token is AUTH_REFUSED', async () => {
    const { server, client, next } = setup({ fetch: sessionFetch({ 'tok-1': 'TOKEN_EXPIRED' }) });
    server.behaviour.set(A, 'refuse');
    client.connect();
    assert.match((await next('error')).message, /TOKEN_EXPIRED/);
    assert.equal(client.state, 'closed');
  });

  test('a token that is about to expire is renewed before connecting', async () => {
    const exp = Math.floor(Date.now() / 1000) + 5;
    const soon = `h.${Buffer.from(JSON.stringify({ exp })).toString('base64url')}.s`;
    const { server, client, next } = setup({ token: soon, getToken: () => 'fresh' });
    client.connect();
    await next('connected');
    assert.deepEqual(
      server.sockets.map((s) => s.token),
      ['fresh'],
    );
  });

  test('token-expiring: getToken is called and the fresh token goes up in an auth frame on the same socket', async () => {
    let n = 1;
    const { server, client, next, seen } = setup({ getToken: async () => ({ token: `tok-${++n}`, nodes: [B, A] }) });
    client.connect();
    await next('connected');
    server.last.frame({ type: 'token-expiring', expiresAt: new Date(Date.now() + 30_000).toISOString() });
    await sleep(10);
    assert.deepEqual(server.sent('auth'), [{ type: 'auth', token: 'tok-2' }]);
    server.last.frame({ type: 'authed', expiresAt: new Date(Date.now() + 3_600_000).toISOString() });
    assert.equal(server.sockets.length, 1, 'no reconnect');
    assert.equal(seen.disconnected, undefined);
    // The next connection uses the fresh token too, and the node list getToken returned (keeping the node that worked).
    server.last.serverClose(1006);
    await next('connected', 2);
    assert.deepEqual(
      server.sockets.map((s) => [s.node, s.token]),
      [
        [A, 'tok-1'],
        [A, 'tok-2'],
      ],
    );
  });

  test('token-expiring: a failing getToken is reported, and without getToken nothing is sent', async () => {
    const failing = setup({ getToken: () => Promise.reject(new Error('backend down')) });
    failing.client.connect();
    await failing.next('connected');
    failing.server.last.frame({ type: 'token-expiring', expiresAt: '' });
    const err = await failing.next('error');
    assert.deepEqual([err.code, err.message], ['TOKEN_REFRESH_FAILED', 'getToken failed: backend down']);
    assert.deepEqual(failing.server.sent('auth'), []);

    const plain = setup();
    plain.client.connect();
    await plain.next('connected');
    plain.server.last.frame({ type: 'token-expiring', expiresAt: '' });
    await sleep(10);
    assert.deepEqual(plain.server.sent('auth'), []);
    assert.equal(plain.client.state, 'connected');
  });

  test('auto-ack waits for the promise a handler returns; a failed handler is not acked and gets the message again', async () => {
    const { server, client, next } = setup();
    let release!: () => void;
    let fail = true;
    client.on('message', (m) => {
      if ((m.payload as { n: number }).n === 1) return new Promise<void>((r) => (release = r));
      if (fail) throw new Error('boom');
      return undefined;
    });
    client.connect();
    await next('connected');
    server.last.frame(msg(1));
    server.last.frame(msg(2));
    assert.equal((await next('error')).code, 'HANDLER_FAILED');
    await sleep(10);
    assert.deepEqual(server.sent('ack'), [], 'nothing acked while the handler runs or after it failed');
    release();
    await eventually(() => server.sent('ack').length === 1, { timeoutMs: 2000, intervalMs: 1 });
    assert.deepEqual(server.sent('ack')[0].ids, [id(1)]);
    fail = false;
    server.last.serverClose(1006);
    await next('connected', 2);
    server.last.frame(msg(1));
    server.last.frame(msg(2));
    await next('message', 3);
    await eventually(() => server.sockets[1]!.sent.filter((f) => f.type === 'ack').flatMap((f) => f.ids).length === 2, { timeoutMs: 2000, intervalMs: 1 });
  });

  test('manual acks with autoAck off; unsent acks and upstream go out after reconnect', async () => {
    const { server, client, next } = setup({ autoAck: false, maxQueuedSends: 2 });
    client.connect();
    await next('connected');
    server.last.frame(msg(1));
    await next('message');
    await sleep(10);
    assert.deepEqual(server.sent('ack'), []);
    server.behaviour.set(A, 'hang');
    server.behaviour.set(B, 'hang');
    server.last.serverClose(1006);
    await next('disconnected');
    client.ack(id(1));
    assert.throws(() => client.ack('nope'), /not a message id/);
    assert.equal(client.send({ up: 1 }), true);
    assert.equal(client.send({ up: 2 }), true);
    assert.equal(client.send({ up: 3 }), false, 'the queue is bounded');
    await server.socket(2);
    server.last.serverOpen(true);
    await next('connected', 2);
    assert.deepEqual(server.last.sent, [
      { type: 'ack', ids: [id(1)] },
      { type: 'upstream', payload: { up: 1 } },
      { type: 'upstream', payload: { up: 2 } },
    ]);
  });

  test('a silent link is declared dead after heartbeatTimeoutMs, and pings are sent meanwhile', async () => {
    const { server, client, next } = setup({ heartbeatMs: 5, heartbeatTimeoutMs: 60 });
    client.connect();
    await next('connected');
    const d = await next('disconnected');
    assert.equal(d.code, 4004);
    // At least one: on a loaded machine the timers may fire late, and a late interval fires once, not for every tick it missed.
    assert.ok(server.sockets[0]!.sent.filter((f) => f.type === 'ping').length >= 1, 'pings were sent while the link was silent');
    await next('connected', 2);
  });

  test('offline closes and waits; online reconnects at once', async () => {
    const window = new EventTarget();
    const { server, client, next } = setup({ connectivity: window, backoff: { minMs: 10_000, maxMs: 10_000 } });
    client.connect();
    await next('connected');
    window.dispatchEvent(new Event('offline'));
    const d = await next('disconnected');
    assert.deepEqual([d.willReconnect, d.delayMs], [true, -1]);
    assert.equal(client.state, 'disconnected');
    assert.equal(server.sockets[0]!.readyState, 3);
    window.dispatchEvent(new Event('online'));
    assert.equal((await next('connected', 2)).url, A, 'at once, not after the 10 s backoff');
  });

  test('a reconnect frame moves the client to the nodes it names', async () => {
    const { server, client, next } = setup();
    client.connect();
    await next('connected');
    server.last.frame({ type: 'reconnect', nodes: [B] });
    assert.equal((await next('connected', 2)).url, B);
    assert.equal(server.sockets[0]!.readyState, 3);
  });

  test('close() sends queued acks, closes, and never reconnects', async () => {
    const { server, client, next } = setup({ ackBatchMs: 10_000 });
    client.connect();
    await next('connected');
    server.last.frame(msg(7));
    await next('message');
    client.close();
    assert.deepEqual(server.sent('ack'), [{ type: 'ack', ids: [id(7)] }]);
    assert.equal(client.state, 'closed');
    assert.equal(client.send('late'), false);
    assert.throws(() => client.connect(), /closed/);
  });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
