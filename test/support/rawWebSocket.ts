import http from 'node:http';
import net from 'node:net';
import { randomBytes } from 'node:crypto';

/**
 * A WebSocket client with nothing in between: the upgrade request written by
 * hand over TCP, frames built byte by byte. For sending what `ws` would not
 * (any opcode, reserved bits, floods of control frames) and reading exactly
 * what the server wrote back. Resolves with the socket once the 101 arrived
 * (bytes after the 101 in the same chunk are in `rest`).
 */
export function rawWebSocket(url: string, token: string): Promise<{ socket: net.Socket; rest: Buffer }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = net.connect(Number(port), hostname, () => {
      socket.write(
        `GET /v1/ws?token=${encodeURIComponent(token)} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${randomBytes(16).toString('base64')}\r\n\r\n`,
      );
    });
    socket.on('error', () => undefined);
    socket.setTimeout(10_000, () => socket.destroy());
    socket.once('close', () => reject(new Error('socket closed before the upgrade')));
    socket.once('data', (d: Buffer) => {
      const end = d.indexOf('\r\n\r\n');
      if (!d.toString('latin1', 0, 12).startsWith('HTTP/1.1 101') || end < 0) return reject(new Error(d.toString().split('\r\n')[0]));
      resolve({ socket, rest: d.subarray(end + 4) });
    });
  });
}

/** One masked client frame (RFC 6455), payload under 64 KiB. */
export function maskedFrame(opcode: number, payload: Buffer = Buffer.alloc(0), { fin = true, rsv = 0 } = {}): Buffer {
  const len = payload.length;
  const first = (fin ? 0x80 : 0) | rsv | opcode;
  const header = len < 126 ? Buffer.from([first, 0x80 | len]) : Buffer.from([first, 0x80 | 126, len >> 8, len & 0xff]);
  const mask = randomBytes(4);
  return Buffer.concat([header, mask, Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!))]);
}

/** The server's frames in `bytes` (unmasked, as servers send them): opcode and payload of each complete one. */
export function serverFrames(bytes: Buffer): { opcode: number; payload: Buffer }[] {
  const out: { opcode: number; payload: Buffer }[] = [];
  let i = 0;
  while (i + 2 <= bytes.length) {
    let len = bytes[i + 1]! & 0x7f;
    let at = i + 2;
    if (len === 126) {
      if (at + 2 > bytes.length) break;
      len = bytes.readUInt16BE(at);
      at += 2;
    } else if (len === 127) {
      if (at + 8 > bytes.length) break;
      len = Number(bytes.readBigUInt64BE(at));
      at += 8;
    }
    if (at + len > bytes.length) break;
    out.push({ opcode: bytes[i]! & 0x0f, payload: bytes.subarray(at, at + len) });
    i = at + len;
  }
  return out;
}

/**
 * A WebSocket handshake over plain HTTP, closed as soon as it is answered: the
 * status, headers and JSON body of a refusal, or 101 when accepted.
 */
export function handshake(url: string, token: string, timeoutMs = 5000): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: any }> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url.replace(/^ws/, 'http')}?token=${encodeURIComponent(token)}`, {
      headers: { connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-version': '13', 'sec-websocket-key': randomBytes(16).toString('base64') },
      timeout: timeoutMs,
    });
    req.on('upgrade', (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 101, headers: res.headers, body: undefined });
    });
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('timeout', () => req.destroy(new Error('handshake timed out')));
    req.on('error', reject);
  });
}
