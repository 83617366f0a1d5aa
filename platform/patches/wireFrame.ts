import { Socket } from 'node:net';
import { WebSocket } from 'ws';
import { versionGuard } from './versionGuard.js';

/**
 * A server-to-client text frame built once (RFC 6455 header and UTF-8
 * payload in one buffer) and written as is to every socket it is for: a
 * broadcast to N sockets encodes and frames its message once, not N times.
 * `text` is kept for the sockets that cannot take the raw write.
 */
export interface WireFrame {
  readonly text: string;
  readonly bytes: Buffer;
}

/** Frames `text` as one final, unmasked text frame (opcode 1; server frames are never masked). */
export function wireFrame(text: string): WireFrame {
  const length = Buffer.byteLength(text);
  const headerBytes = length < 126 ? 2 : length < 65_536 ? 4 : 10;
  const bytes = Buffer.allocUnsafe(headerBytes + length);
  bytes[0] = 0x81; // FIN + text
  if (headerBytes === 2) bytes[1] = length;
  else if (headerBytes === 4) {
    bytes[1] = 126;
    bytes.writeUInt16BE(length, 2);
  } else {
    bytes[1] = 127;
    bytes.writeUInt32BE(0, 2);
    bytes.writeUInt32BE(length, 6);
  }
  bytes.write(text, headerBytes, 'utf8');
  return { text, bytes };
}

/** The `ws` versions whose private fields (`_socket`, `_sender._state`, `_sender._queue`) the raw write was checked against. */
export const WS_RAW_WRITE = { patch: 'wireFrame', pkg: 'ws', versions: ['8.23.0'] } as const;

/** Whether frames are written straight to the socket (true) or through `ws.send` (another ws version). */
export const rawWriteEnabled = versionGuard(WS_RAW_WRITE);

/** The parts of a `ws` WebSocket the raw write relies on; checked by wireFrame.test.ts and pusher/src/connection.test.ts. */
interface WsInternals {
  readyState: number;
  _socket: Socket | null;
  _sender: { _state: number; _queue: unknown[] };
}

/**
 * The socket under `ws` (for cork/uncork and backpressure), or undefined
 * before it is set, after it is gone, or when `_socket` is not a net.Socket.
 */
export function socketOf(ws: WebSocket): Socket | undefined {
  const socket = (ws as unknown as WsInternals)._socket;
  return socket instanceof Socket ? socket : undefined;
}

/**
 * Writes a pre-built frame straight to the socket under `ws`. That is only
 * safe when ws's sender has nothing queued ahead of it (it queues while
 * compressing or reading a Blob; permessage-deflate is off here, so in
 * practice never) and the socket is open (after a close frame nothing may
 * follow). Otherwise the text goes through `ws.send`, which keeps the order
 * or drops it as ws does after close. Either way the bytes on the wire are
 * the same single text frame. With a `ws` version other than WS_RAW_WRITE's,
 * every frame goes through `ws.send`.
 */
export function writeFrame(ws: WebSocket, frame: WireFrame): void {
  const w = ws as unknown as WsInternals;
  if (rawWriteEnabled && w.readyState === WebSocket.OPEN && w._socket && w._sender._state === 0 && w._sender._queue.length === 0) w._socket.write(frame.bytes);
  else ws.send(frame.text);
}
