import { after, before } from 'node:test';
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import { WebSocket, WebSocketServer } from 'ws';

/** A ws server on loopback, to open client/server socket pairs on. */
export interface WsLoopback {
  /** A client connected to the server, once open, and the server's side of it. */
  connect(): Promise<{ client: WebSocket; server: WebSocket }>;
}

/**
 * A ws server on a free loopback port, without permessage-deflate (frames go
 * on the wire as written), started before the tests of the calling suite (or
 * file) and closed after them. Needs no other server: unit tests may use it.
 */
export function wsLoopback(): WsLoopback {
  let wss: WebSocketServer;
  let url = '';
  before(async () => {
    wss = new WebSocketServer({ port: 0, host: '127.0.0.1', perMessageDeflate: false });
    await once(wss, 'listening');
    url = `ws://127.0.0.1:${(wss.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => wss.close(() => resolve())));
  return {
    async connect() {
      const accepted = once(wss, 'connection') as Promise<[WebSocket]>;
      const client = new WebSocket(url);
      await once(client, 'open');
      const [server] = await accepted;
      return { client, server };
    },
  };
}
