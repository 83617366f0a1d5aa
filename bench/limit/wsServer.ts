/**
 * The bare `ws` server of the limit scenario: no pipeline, no protocol, just
 * connections. Driven over IPC:
 *   {cmd:'mem'}                  -> after a full GC: RSS, heap used, connections
 *   {cmd:'broadcast', mode}      -> one message to every client, through
 *        'send': ws.send(string) per socket (ws frames it each time), or
 *        'raw':  one pre-built WebSocket frame written to each raw socket;
 *      the payload carries the submission time, so clients measure time to receipt.
 * Run with --expose-gc. Env: PORT.
 */
import type { Socket } from 'node:net';
import { WebSocketServer, type WebSocket } from 'ws';
import { nowMs, PADDING, type BenchPayload } from '../peers/protocol.js';

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

let seq = 0;
function broadcast(mode: 'send' | 'raw', run: number): { clients: number; loopMs: number } {
  const payload: BenchPayload = { t: nowMs(), r: run, s: seq++, b: 1, p: PADDING };
  const t0 = performance.now();
  if (mode === 'send') {
    const text = JSON.stringify(payload);
    for (const ws of clients) ws.send(text);
  } else {
    const frame = textFrame(Buffer.from(JSON.stringify(payload)));
    for (const ws of clients) (ws as unknown as { _socket: Socket })._socket.write(frame);
  }
  return { clients: clients.size, loopMs: performance.now() - t0 };
}

const gc = (globalThis as { gc?: () => void }).gc;
process.on('message', (m: { cmd: string; mode?: 'send' | 'raw'; run?: number }) => {
  if (m.cmd === 'mem') {
    gc?.();
    gc?.();
    const mem = process.memoryUsage();
    process.send!({ ev: 'mem', rss: mem.rss, heapUsed: mem.heapUsed, connections: clients.size, gc: Boolean(gc) });
  } else if (m.cmd === 'broadcast') {
    process.send!({ ev: 'broadcast', ...broadcast(m.mode ?? 'send', m.run ?? 0) });
  }
});
wss.on('listening', () => process.send!({ ev: 'ready' }));
wss.on('error', (err) => process.send!({ ev: 'error', message: String(err) }));
process.on('disconnect', () => process.exit(0));
