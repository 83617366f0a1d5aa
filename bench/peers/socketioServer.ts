/**
 * The Socket.IO peer: one server process (run two, like our two pushers) with
 * the Redis adapter on the shared Redis, WebSocket transport only. Each client
 * joins a room named after its user (from the handshake `auth.user`; no token
 * check, which favours the peer). The peer-native publish API is a small HTTP
 * endpoint on the server that calls the Socket.IO server API, which routes
 * through the Redis adapter to whichever process holds the user:
 *   POST /publish {user, data}  -> io.to(user).emit('m', data)
 *   POST /broadcast {data}      -> io.emit('m', data)
 *   GET  /stats                 -> local connections and process.memoryUsage()
 * Env: PORT, REDIS_URL, ADAPTER_KEY (Redis channel prefix, isolates runs).
 */
import http from 'node:http';
import { Redis } from 'ioredis';
import { Server } from 'socket.io';
import { createAdapter } from '@socket.io/redis-adapter';

const port = Number(process.env.PORT);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const pub = new Redis(redisUrl);
const sub = pub.duplicate();

const readBody = (req: http.IncomingMessage) =>
  new Promise<{ user?: unknown; data?: unknown } | undefined>((resolve, reject) => {
    let s = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (s += c));
    req.on('end', () => {
      try {
        resolve(JSON.parse(s));
      } catch (err) {
        reject(err);
      }
    });
    req.on('error', reject);
  });

const server = http.createServer((req, res) => {
  const reply = (status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/stats') {
    reply(200, { connections: ioServer.engine.clientsCount, memory: process.memoryUsage() });
    return;
  }
  if (req.method !== 'POST' || (req.url !== '/publish' && req.url !== '/broadcast')) {
    reply(404, { error: 'not found' });
    return;
  }
  readBody(req).then(
    (b) => {
      if (req.url === '/publish') {
        if (typeof b?.user !== 'string') return reply(400, { error: 'user must be a string' });
        ioServer.to(b.user).emit('m', b.data);
      } else ioServer.emit('m', b?.data);
      reply(202, { status: 'accepted' });
    },
    () => reply(400, { error: 'invalid JSON' }),
  );
});

const ioServer = new Server(server, {
  transports: ['websocket'],
  serveClient: false,
  adapter: createAdapter(pub, sub, { key: process.env.ADAPTER_KEY ?? 'socket.io-bench' }),
});
ioServer.on('connection', (socket) => {
  const user = socket.handshake.auth?.user;
  if (typeof user !== 'string') {
    socket.disconnect(true);
    return;
  }
  void socket.join(user);
});

server.listen(port, '127.0.0.1', () => console.log(`socket.io peer listening on ${port}`));
const stop = () => {
  ioServer.close();
  pub.disconnect();
  sub.disconnect();
  setTimeout(() => process.exit(0), 500).unref();
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
