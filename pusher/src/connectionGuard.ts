import type http from 'node:http';
import type { Socket } from 'node:net';
import { isLoopback, sourceKey } from './handshakeLimiter.js';

export interface ConnectionGuardOptions {
  /** Open TCP connections one source address (IPv6: its /64) may hold; 0 turns the cap off. */
  maxPerAddress: number;
  /** Time from accepting a connection to its first complete request (or upgrade) headers; then it is destroyed. */
  firstRequestTimeoutMs: number;
  /** `loopback` and/or exact addresses the per-address cap does not apply to (the handshake exemptions). */
  exempt: string[];
  /** A connection refused or cut: `too_many_from_address` or `header_timeout`. */
  onDrop(reason: 'too_many_from_address' | 'header_timeout'): void;
}

/**
 * Bounds what a peer can hold on the public port before it ever completes a
 * request, which the handshake rate and the socket caps (counted on complete
 * upgrades) do not see: a peer that opens connections and sends nothing, or
 * its headers a byte at a time, would otherwise keep each for Node's 60 s
 * header timeout (checked every 30 s), at any count, until the node runs out
 * of file descriptors and accepts no one. Each source address may hold
 * `maxPerAddress` connections (over it: closed at once), and a connection
 * must deliver its first request's headers within `firstRequestTimeoutMs`.
 */
export function guardConnections(server: http.Server, { maxPerAddress, firstRequestTimeoutMs, exempt, onDrop }: ConnectionGuardOptions) {
  const exemptLoopback = exempt.includes('loopback');
  const exemptExact = new Set(exempt.filter((a) => a !== 'loopback').map(sourceKey));
  const open = new Map<string, number>();
  const firstRequest = new WeakMap<Socket, NodeJS.Timeout>();

  // Before the HTTP server's own listener: a refused socket is destroyed before it is parsed.
  server.prependListener('connection', (socket: Socket) => {
    const address = socket.remoteAddress;
    if (maxPerAddress > 0 && address && !(exemptLoopback && isLoopback(address))) {
      const key = sourceKey(address);
      if (!exemptExact.has(key)) {
        const n = open.get(key) ?? 0;
        if (n >= maxPerAddress) {
          onDrop('too_many_from_address');
          socket.destroy();
          return;
        }
        open.set(key, n + 1);
        socket.once('close', () => {
          const left = (open.get(key) ?? 1) - 1;
          if (left > 0) open.set(key, left);
          else open.delete(key);
        });
      }
    }
    const timer = setTimeout(() => {
      onDrop('header_timeout');
      socket.destroy();
    }, firstRequestTimeoutMs).unref();
    firstRequest.set(socket, timer);
    socket.once('close', () => clearTimeout(timer));
  });
  const arrived = (req: http.IncomingMessage) => {
    const timer = firstRequest.get(req.socket as Socket);
    if (timer) {
      clearTimeout(timer);
      firstRequest.delete(req.socket as Socket);
    }
  };
  server.prependListener('request', arrived);
  server.prependListener('upgrade', arrived);
  return {
    /** Source addresses holding connections now (for tests). */
    get addresses() {
      return open.size;
    },
  };
}
