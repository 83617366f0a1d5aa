import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { connectClient, startStack, type TestClient, type TestStack, wsOf } from './support/stack.js';
import { eventually } from './support/eventually.js';

/**
 * A structure-aware WebSocket fuzzer against a running pusher: random JSON
 * trees, deep nesting, huge strings, wrong types for every field of every
 * frame type, binary, fragmented and invalid UTF-8 frames through `ws`, and
 * random raw frames (any opcode, reserved bits, control frames) over a plain
 * TCP socket after a real handshake. Bounded in frames and time; seeded, and
 * the seed is printed: `PUSH_WS_FUZZ_SEED=<seed> npm test -- hardening-wsFuzz` replays a run.
 */
const FRAMES = 24_000;
const BUDGET_MS = 55_000;
const CONNECTIONS = 6;
const RAW_SHARE = 0.08;

/** mulberry32: small, fast, good enough to drive a fuzzer reproducibly. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const int = (n: number) => Math.floor(next() * n);
  const pick = <T>(xs: readonly T[]): T => xs[int(xs.length)]!;
  const bytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  return { next, int, pick, bytes, chance: (p: number) => next() < p };
}
type Rng = ReturnType<typeof prng>;

const ID_CHARS = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const TYPES = ['ack', 'subscribe', 'unsubscribe', 'upstream', 'auth', 'ping', 'nope', '', 'ACK', 'message', 'welcome', '__proto__'] as const;

function randomString(r: Rng, max = 40): string {
  const alphabets = ['abc', ID_CHARS, '[]{}":,\\', 'é€😀\u0000\u2028', 'a-z._:'];
  const chars = r.pick(alphabets);
  return Array.from({ length: r.int(max) }, () => chars[r.int(chars.length)]).join('');
}

/** A random JSON value of bounded size. */
function randomValue(r: Rng, depth = 0): unknown {
  const k = r.int(depth > 4 ? 5 : 8);
  switch (k) {
    case 0:
      return null;
    case 1:
      return r.chance(0.5);
    case 2:
      return r.pick([0, -1, 1e308, -0, 2 ** 53 + 1, r.next() * 1e6]);
    case 3:
      return randomString(r);
    case 4:
      return randomId(r);
    case 5:
      return Array.from({ length: r.int(6) }, () => randomValue(r, depth + 1));
    default:
      return Object.fromEntries(
        Array.from({ length: r.int(6) }, () => [r.pick(['type', 'ids', 'group', 'payload', 'token', randomString(r, 8)]), randomValue(r, depth + 1)]),
      );
  }
}

const randomId = (r: Rng) => Array.from({ length: 26 }, () => ID_CHARS[r.int(ID_CHARS.length)]).join('');
const nested = (depth: number, open = '[', close = ']') => open.repeat(depth) + close.repeat(depth);

/** A value for `field` of a frame of `type`: sometimes right, mostly wrong. */
function fieldValue(r: Rng, field: string): unknown {
  const wrong = () => r.pick([randomValue(r), undefined, null, 42, '', {}, [], [null], randomString(r, 300)]);
  if (r.chance(0.4)) {
    switch (field) {
      case 'ids':
        return r.pick([
          Array.from({ length: 1 + r.int(20) }, () => randomId(r)),
          Array.from({ length: 501 }, () => randomId(r)),
          [randomId(r).toLowerCase()],
          [randomId(r) + 'X'],
          [],
        ]);
      case 'group':
        return r.pick(['news', `g${r.int(300)}`, 'a'.repeat(129), 'no spaces', 'x:y.z-1', '']);
      case 'payload':
        return randomValue(r);
      case 'token':
        return r.pick(['a.b.c', randomString(r, 200), 'eyJhbGciOiJFUzI1NiJ9.e30.sig']);
    }
  }
  return wrong();
}

/** One text frame: JSON (mostly structured, sometimes broken). */
function textFrame(r: Rng): string {
  const k = r.int(100);
  if (k < 8) return `{"type":${nested(1 + r.int(31_000))}}`; // deep, up to ~62 KB
  if (k < 12) return `{"type":"upstream","payload":${nested(20 + r.int(200), '{"a":', '}').replace(/\{"a":\}/, '{"a":1}')}}`;
  if (k < 15) return JSON.stringify({ type: 'upstream', payload: 'x'.repeat(r.int(90_000)) }); // around and over the frame limit
  if (k < 20) return randomString(r, 200); // not JSON
  if (k < 25) return JSON.stringify(randomValue(r)); // any JSON value, rarely an object with a type
  if (k < 30) return r.pick(['{"type":"ping"}', '{"type":"ping"', '{}', '[]', 'null', '"ping"', '{"type":"ack","ids":["' + randomId(r) + '"]}']);
  const type = r.pick(TYPES);
  const frame: Record<string, unknown> = { type: r.chance(0.1) ? randomValue(r) : type };
  for (const field of ['ids', 'group', 'payload', 'token']) if (r.chance(0.5)) frame[field] = fieldValue(r, field);
  if (r.chance(0.1)) frame[randomString(r, 10)] = randomValue(r);
  return JSON.stringify(frame) ?? 'undefined';
}

/** A masked client frame with a random opcode, reserved bits and payload (RFC 6455 framing, content anything). */
function rawFrame(r: Rng): Buffer {
  const opcode = r.pick([0x0, 0x1, 0x2, 0x8, 0x9, 0xa, 0x3, 0xb, 0xf]);
  const fin = r.chance(0.8) ? 0x80 : 0;
  const rsv = r.chance(0.1) ? r.pick([0x40, 0x20, 0x10]) : 0;
  const payload =
    opcode === 0x1 && r.chance(0.5)
      ? Buffer.concat([Buffer.from('{"type":"ping","x":"'), r.bytes(r.int(20)), Buffer.from('"}')])
      : r.bytes(r.int(opcode >= 0x8 ? 140 : 400));
  const len = payload.length;
  const header = len < 126 ? Buffer.from([fin | rsv | opcode, 0x80 | len]) : Buffer.from([fin | rsv | opcode, 0x80 | 126, len >> 8, len & 0xff]);
  const mask = r.bytes(4);
  const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
  return Buffer.concat([header, mask, masked]);
}

/** A raw TCP WebSocket: the upgrade request written by hand, resolved once the 101 arrives. */
function rawSocket(url: string, token: string): Promise<net.Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect(Number(port), hostname, () => {
      sock.write(
        `GET /v1/ws?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
    });
    sock.once('data', (d: Buffer) => (d.toString().startsWith('HTTP/1.1 101') ? resolve(sock) : reject(new Error(d.toString().split('\r\n')[0]))));
    sock.on('error', () => undefined);
    sock.setTimeout(10_000, () => sock.destroy());
    sock.once('close', () => reject(new Error('raw socket closed before the upgrade')));
  });
}

const turn = () => new Promise((r) => setImmediate(r));

describe('WebSocket fuzzer', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({
      env: {
        // Let a fuzzing connection live long enough to take many frames; limits themselves are tested elsewhere.
        PUSHER_FRAME_RATE: '10000',
        PUSHER_MAX_BAD_FRAMES: '1000000',
        PUSHER_MAX_UNKNOWN_ACKS: '1000000',
        PUSHER_UPSTREAM_MAX_REFUSED: '100000',
      },
    });
  });
  after(async () => {
    await s?.stop();
  });

  test(`${FRAMES} random frames in at most ${BUDGET_MS / 1000} s; the pusher lives and still delivers`, { timeout: 150_000 }, async () => {
    const seed = process.env.PUSH_WS_FUZZ_SEED ? Number(process.env.PUSH_WS_FUZZ_SEED) : randomBytes(4).readUInt32BE(0);
    console.log(`fuzz seed ${seed} (replay with PUSH_WS_FUZZ_SEED=${seed})`);
    const r = prng(seed);
    const pusher = s.pushers[0]!;
    const url = wsOf(pusher.url);
    const tokens = await Promise.all(Array.from({ length: CONNECTIONS }, (_, i) => s.token('fuzz', `fz${i}`).then((t) => t.token)));
    const rawToken = (await s.token('fuzz-raw', 'raw')).token;
    const closes = new Map<number, number>();
    let sent = 0;
    let rawSent = 0;
    let reconnects = 0;
    const started = Date.now();
    const deadline = started + BUDGET_MS;
    const more = () => sent < FRAMES && Date.now() < deadline;

    const open = async (token: string): Promise<TestClient> => {
      const c = await connectClient(url, token);
      c.ws.on('error', () => undefined); // a reset after a refused frame is expected; the fuzz goes on
      void c.closed.then(({ code }) => closes.set(code, (closes.get(code) ?? 0) + 1));
      return c;
    };

    const fuzzWs = async (token: string) => {
      let c = await open(token);
      while (more()) {
        if (c.ws.readyState !== c.ws.OPEN) {
          reconnects++;
          c = await open(token);
        }
        const k = r.int(100);
        if (k < 6) c.ws.send(r.bytes(r.int(2000)), { binary: true });
        else if (k < 8)
          c.ws.send(
            Buffer.concat([
              Buffer.from('{"type":"'),
              r.pick([Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from([0xed, 0xa0, 0x80]), r.bytes(8)]),
              Buffer.from('"}'),
            ]),
            { binary: false },
          );
        else if (k < 16) {
          // A message in fragments, sometimes with another frame (or a ping) in the middle.
          const text = textFrame(r);
          const cut = r.int(text.length + 1);
          c.ws.send(text.slice(0, cut), { fin: false });
          if (r.chance(0.2)) c.ws.ping();
          if (r.chance(0.1)) c.ws.send('{"type":"ping"}');
          c.ws.send(text.slice(cut), { fin: true });
          sent++;
        } else if (k < 18) c.ws.ping(r.bytes(r.int(125)));
        else c.ws.send(textFrame(r));
        sent++;
        if (sent % 25 === 0 || c.ws.bufferedAmount > 256 * 1024) await turn();
        while (c.ws.readyState === c.ws.OPEN && c.ws.bufferedAmount > 1 << 20 && Date.now() < deadline) await new Promise((res) => setTimeout(res, 5));
      }
      await c.close().catch(() => undefined);
    };

    const fuzzRaw = async () => {
      while (more() && rawSent < FRAMES * RAW_SHARE) {
        let sock: net.Socket;
        try {
          sock = await rawSocket(url, rawToken);
        } catch {
          reconnects++;
          continue;
        }
        const done = new Promise((res) => sock.once('close', res));
        for (let i = 0; i < 50 + r.int(200) && !sock.destroyed && more(); i++) {
          sock.write(rawFrame(r));
          sent++;
          rawSent++;
          if (i % 10 === 0) await turn();
        }
        sock.end();
        await Promise.race([done, new Promise((res) => setTimeout(res, 3000))]);
        sock.destroy();
        reconnects++;
      }
    };

    await Promise.all([...tokens.map((t) => fuzzWs(t)), fuzzRaw()]);
    const elapsed = Date.now() - started;
    console.log(
      `fuzz: ${sent} frames (${rawSent} raw) in ${elapsed} ms over ${CONNECTIONS} ws + 1 raw connections, ${reconnects} reconnects; closes by code ${JSON.stringify(Object.fromEntries(closes))}`,
    );
    assert.ok(sent >= 20_000, `only ${sent} frames were sent in the budget`);
    assert.ok(elapsed <= 60_000, `fuzzing took ${elapsed} ms`);

    // Alive: the process did not exit, nothing escaped a handler, and a normal client gets a message end to end.
    assert.equal(pusher.proc.exitCode, null, pusher.output().slice(-4000));
    assert.equal(pusher.proc.signalCode, null);
    assert.doesNotMatch(pusher.output(), /uncaught|unhandled|RangeError|Maximum call stack|frame handler failed/i, pusher.output().slice(-4000));
    const metrics = await (await fetch(`${pusher.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /^push_frame_handler_errors_total(\{[^}]*\})? [1-9]/m);
    const normal = await connectClient(url, (await s.token('normal', 'phone')).token);
    const m = await s.send({ to: { users: ['normal'] }, payload: { after: 'fuzz' }, persistent: true });
    assert.equal(m.status, 202);
    await normal.waitFor(1, 20_000);
    assert.equal(normal.messages[0]!.id, m.body.id);
    normal.ack([m.body.id]);
    await eventually(
      async () => {
        const fromHealth = await fetch(`${pusher.url}/healthz`);
        return fromHealth.ok;
      },
      { what: 'the pusher answers /healthz' },
    );
    await normal.close();
  });
});
