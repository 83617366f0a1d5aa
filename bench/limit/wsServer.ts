/**
 * The bare `ws` server of the limit scenario: no pipeline, no protocol, just
 * connections. Driven over IPC:
 *   {cmd:'mem'}                  -> after a full GC: RSS, heap used, connections
 *   {cmd:'broadcast', mode}      -> one message to every client, through
 *        'send':   ws.send(string) per socket (ws frames it each time),
 *        'raw':    one pre-built WebSocket frame written to each raw socket, or
 *        'pusher': the pusher's own write path (Connection.send of one WireFrame);
 *      the payload carries the submission time, so clients measure time to receipt.
 *   {cmd:'burst', clients, messages, coalesce} -> `messages` frames to each of the
 *      first `clients` clients in one event-loop turn through Connection.send,
 *      with frame coalescing on or off (the pusher's PUSHER_COALESCE).
 * Run with --expose-gc. Env: PORT.
 */
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { nowMs, PADDING, type BenchPayload } from '../peers/protocol.js';
import { Connection, type ConnectionLimits } from '../../pusher/src/connection.js';
import { wireFrame } from '../../platform/patches/wireFrame.js';

const port = Number(process.env.PORT);
const clients = new Set<WebSocket>();
const wss = new WebSocketServer({ host: '127.0.0.1', port, perMessageDeflate: false, clientTracking: false });
wss.on('connection', (ws) => {
  clients.add(ws);
  ws.on('close', () => clients.delete(ws));
  ws.send('hello');
});

/** An unmasked, final text frame (server to client) around `data`. */
function textFrame(data: Buffer): Buffer {
  const len = data.length;
  const head = len < 126 ? Buffer.from([0x81, len]) : len < 65536 ? Buffer.from([0x81, 126, len >> 8, len & 0xff]) : null;
  if (!head) throw new Error('frame too large for this benchmark');
  return Buffer.concat([head, data]);
}

/** The pusher's defaults; `coalesce` is switched per burst. */
const limits: ConnectionLimits = {
  maxBufferedBytes: 1 << 20,
  frameRate: 100,
  maxPendingLive: 1000,
  upstreamRate: 10,
  upstreamBurst: 20,
  upstreamMaxRefused: 50,
  coalesce: true,
};
/** Pusher connections around the sockets, made on first use (not counted in the idle memory figure). */
const conns = new Map<WebSocket, Connection>();
function pusherConnections(): Connection[] {
  for (const ws of clients) {
    if (conns.has(ws)) continue;
    const c = new Connection(ws, String(conns.size), 'bench', `u${conns.size}`, 'd', 'open', limits);
    c.finishResume(); // live delivery, nothing to resume
    conns.set(ws, c);
  }
  return [...conns.values()].filter((c) => clients.has(c.ws));
}

let seq = 0;
type Mode = 'send' | 'raw' | 'pusher';
function broadcast(mode: Mode, run: number): { clients: number; loopMs: number } {
  const payload: BenchPayload = { t: nowMs(), r: run, s: seq++, b: 1, p: PADDING };
  const targets = mode === 'pusher' ? pusherConnections() : [];
  const t0 = performance.now();
  if (mode === 'send') {
    const text = JSON.stringify(payload);
    for (const ws of clients) ws.send(text);
  } else if (mode === 'pusher') {
    const frame = wireFrame(JSON.stringify(payload));
    for (const c of targets) c.send(frame);
  } else {
    const frame = textFrame(Buffer.from(JSON.stringify(payload)));
    for (const ws of clients) (ws as unknown as { _socket: Socket })._socket.write(frame);
  }
  return { clients: mode === 'pusher' ? targets.length : clients.size, loopMs: performance.now() - t0 };
}

/** `messages` frames to each of `n` clients, all in one turn: what a burst of unicast messages does to the write path. */
async function burst(run: number, n: number, messages: number, coalesce: boolean): Promise<{ clients: number; messages: number; loopMs: number }> {
  const targets = pusherConnections().slice(0, n);
  const t = nowMs();
  const frames = Array.from({ length: messages }, () => wireFrame(JSON.stringify({ t, r: run, s: seq++, p: PADDING } satisfies BenchPayload)));
  limits.coalesce = coalesce;
  const t0 = performance.now();
  for (const c of targets) for (const f of frames) c.send(f);
  // The corked sockets are written when the turn ends: the loop time includes that write.
  await new Promise((r) => setImmediate(r));
  return { clients: targets.length, messages: targets.length * messages, loopMs: performance.now() - t0 };
}

const gc = (globalThis as { gc?: () => void }).gc;
process.on('message', (m: { cmd: string; mode?: Mode; run?: number; clients?: number; messages?: number; coalesce?: boolean }) => {
  if (m.cmd === 'mem') {
    gc?.();
    gc?.();
    const mem = process.memoryUsage();
    process.send!({ ev: 'mem', rss: mem.rss, heapUsed: mem.heapUsed, connections: clients.size, gc: Boolean(gc) });
  } else if (m.cmd === 'broadcast') {
    process.send!({ ev: 'broadcast', ...broadcast(m.mode ?? 'send', m.run ?? 0) });
  } else if (m.cmd === 'burst') {
    void burst(m.run ?? 0, m.clients ?? 1000, m.messages ?? 20, m.coalesce ?? true).then((r) => process.send!({ ev: 'burst', ...r }));
  }
});
wss.on('listening', () => process.send!({ ev: 'ready' }));
wss.on('error', (err) => process.send!({ ev: 'error', message: String(err) }));
process.on('disconnect', () => process.exit(0));
