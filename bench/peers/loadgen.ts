/**
 * Load-generator child: holds WebSocket clients of one kind (our protocol,
 * Socket.IO, Centrifugo's JSON protocol, or bare frames) and records the
 * latency of every message from the submission time carried in its payload.
 * Driven over IPC by the benchmark (see protocol.ts); one process stays well
 * under the per-process open-file limit.
 */
import { createHmac } from 'node:crypto';
import { WebSocket } from 'ws';
import { io, type Socket } from 'socket.io-client';
import { LatencyHistogram } from '../lib/histogram.js';
import { nowMs, type BenchPayload, type ConnectCmd, type StatsEv } from './protocol.js';

let hist = new LatencyHistogram();
let received = 0;
let arrivals: number[] = [];
/** 100 ms bucket -> [count, latency sum, latency max]. */
let timeline = new Map<number, [number, number, number]>();
let firstAt = 0;
let lastAt = 0;
let dropped = 0;
let closing = false;
const closers: Array<() => void> = [];

let run = 0;

function onPayload(p: BenchPayload): void {
  if (p.r !== run) return;
  const now = nowMs();
  if (p.b) {
    arrivals.push(now - p.t);
    return;
  }
  received++;
  const ms = now - p.t;
  hist.recordMs(ms);
  if (!firstAt) firstAt = now;
  lastAt = now;
  const bucket = Math.floor(now / 100);
  const b = timeline.get(bucket);
  if (b) {
    b[0]++;
    b[1] += ms;
    if (ms > b[2]) b[2] = ms;
  } else timeline.set(bucket, [1, ms, ms]);
}

const onDrop = () => {
  if (!closing) dropped++;
};

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

/** An HS256 connection JWT for Centrifugo: subject, expiry, server-side channels. */
function centrifugoToken(user: string, secret: string): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify({ sub: user, exp: Math.floor(Date.now() / 1000) + 3600, channels: [`u-${user}`, 'all'] }));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

async function ourToken(cmd: ConnectCmd, user: string): Promise<string> {
  const res = await fetch(`${cmd.authUrl}/v1/tokens`, {
    method: 'POST',
    headers: { authorization: `Bearer ${cmd.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({ userId: user, deviceId: 'd' }),
    signal: AbortSignal.timeout(cmd.timeoutMs),
  });
  if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
  return ((await res.json()) as { token: string }).token;
}

function openWs(
  url: string,
  localAddress: string,
  timeoutMs: number,
  onOpen: (ws: WebSocket) => void,
  onData: (ws: WebSocket, data: string) => boolean | Error,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { localAddress, perMessageDeflate: false, handshakeTimeout: timeoutMs });
    let ready = false;
    const fail = (err: Error) => {
      if (ready) return;
      ready = true;
      ws.terminate();
      reject(err);
    };
    const t = setTimeout(() => fail(new Error('connect timed out')), timeoutMs);
    ws.on('error', (err) => fail(err));
    ws.on('unexpected-response', (_req, res) => fail(new Error(`handshake refused: ${res.statusCode}`)));
    ws.on('open', () => onOpen(ws));
    ws.on('message', (d) => {
      const r = onData(ws, d.toString());
      if (r instanceof Error) fail(r);
      else if (r && !ready) {
        ready = true;
        clearTimeout(t);
        closers.push(() => ws.terminate());
        ws.on('close', onDrop);
        resolve();
      }
    });
    ws.on('close', (code, reason) => fail(new Error(`closed before ready: ${code} ${reason.toString()}`)));
  });
}

async function connectOne(cmd: ConnectCmd, user: string, url: string, localAddress: string): Promise<void> {
  switch (cmd.kind) {
    case 'ours': {
      const token = tokens.get(user) ?? (await ourToken(cmd, user));
      // Ready on the welcome frame; messages are frames of type "message".
      return openWs(
        `${url}?token=${encodeURIComponent(token)}`,
        localAddress,
        cmd.timeoutMs,
        () => undefined,
        (_ws, d) => {
          if (d.includes('"type":"message"')) onPayload(JSON.parse(d).payload);
          return d.includes('"type":"welcome"');
        },
      );
    }
    case 'bare':
      return openWs(
        url,
        localAddress,
        cmd.timeoutMs,
        () => undefined,
        (_ws, d) => {
          if (d !== 'hello') onPayload(JSON.parse(d));
          return true;
        },
      );
    case 'centrifugo': {
      const token = centrifugoToken(user, cmd.hmacSecret!);
      // JSON protocol: replies and pushes are newline-separated objects; `{}` is a ping to answer.
      return openWs(
        url,
        localAddress,
        cmd.timeoutMs,
        (ws) => ws.send(JSON.stringify({ id: 1, connect: { token, name: 'bench' } })),
        (ws, d) => {
          let ready: boolean | Error = false;
          for (const line of d.split('\n')) {
            if (!line) continue;
            if (line === '{}') {
              ws.send('{}');
              continue;
            }
            const f = JSON.parse(line);
            if (f.push?.pub) onPayload(f.push.pub.data);
            else if (f.id === 1 && f.connect) ready = true;
            else if (f.id === 1 && f.error) ready = new Error(`connect refused: ${JSON.stringify(f.error)}`);
          }
          return ready;
        },
      );
    }
    case 'socketio':
      return new Promise((resolve, reject) => {
        const s: Socket = io(url, {
          transports: ['websocket'],
          auth: { user },
          forceNew: true,
          reconnection: false,
          timeout: cmd.timeoutMs,
          localAddress,
        } as never);
        s.on('m', (p: BenchPayload) => onPayload(p));
        s.once('connect', () => {
          closers.push(() => s.close());
          s.on('disconnect', onDrop);
          resolve();
        });
        s.once('connect_error', (err) => {
          s.close();
          reject(err);
        });
      });
  }
}

const tokens = new Map<string, string>();

/** ours: fetches every client's token first, so that the connect phase measures handshakes only. */
async function prepare(cmd: ConnectCmd): Promise<void> {
  const t0 = performance.now();
  let next = 0;
  let failed = 0;
  let firstError: string | undefined;
  if (cmd.kind === 'ours') {
    await Promise.all(
      Array.from({ length: Math.min(cmd.concurrency, cmd.clients.length) }, async () => {
        while (next < cmd.clients.length) {
          const [user] = cmd.clients[next++]!;
          try {
            tokens.set(user, await ourToken(cmd, user));
          } catch (err) {
            failed++;
            firstError ??= err instanceof Error ? err.message : String(err);
          }
        }
      }),
    );
  }
  process.send!({ ev: 'prepared', failed, firstError, ms: performance.now() - t0 });
}

async function connect(cmd: ConnectCmd): Promise<void> {
  const t0 = performance.now();
  let ok = 0;
  let failed = 0;
  let firstError: string | undefined;
  const failedIds: string[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(cmd.concurrency, cmd.clients.length) }, async () => {
      while (next < cmd.clients.length) {
        const i = next++;
        const [user, ep] = cmd.clients[i]!;
        try {
          await connectOne(cmd, user, cmd.endpoints[ep]!, cmd.localAddresses[i % cmd.localAddresses.length]!);
          ok++;
        } catch (err) {
          failed++;
          failedIds.push(user);
          firstError ??= err instanceof Error ? err.message : String(err);
        }
      }
    }),
  );
  process.send!({ ev: 'connected', ok, failed, failedIds, firstError, ms: performance.now() - t0 });
}

function stats(): StatsEv {
  return { ev: 'stats', received, hist: hist.encode(), arrivals, timeline: [...timeline].map(([k, v]) => [k, ...v]), firstAt, lastAt, dropped };
}

process.on('message', (m: { cmd: string; run?: number }) => {
  switch (m.cmd) {
    case 'prepare':
      prepare(m as ConnectCmd).catch((err) => process.send!({ ev: 'error', message: String(err) }));
      break;
    case 'connect':
      connect(m as ConnectCmd).catch((err) => process.send!({ ev: 'error', message: String(err) }));
      break;
    case 'reset':
      run = m.run ?? 0;
      hist = new LatencyHistogram();
      received = 0;
      arrivals = [];
      timeline = new Map();
      firstAt = 0;
      lastAt = 0;
      process.send!({ ev: 'reset' });
      break;
    case 'count':
      process.send!({ ev: 'count', received, broadcast: arrivals.length, lastAt });
      break;
    case 'collect':
      process.send!(stats());
      break;
    case 'close':
      closing = true;
      for (const c of closers) c();
      setTimeout(() => process.exit(0), 200);
      break;
  }
});
process.on('disconnect', () => process.exit(0));
process.send!({ ev: 'ready' });
