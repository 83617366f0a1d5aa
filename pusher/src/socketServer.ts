import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Redis } from 'ioredis';
import type { AppStore } from '../../common/src/apps.js';
import type { DeliveryStore } from '../../store/deliveryStore.js';
import type { Logger } from '../../common/src/logger.js';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
import { CLOSE } from '../../protocol/codes.js';
import { removeGroupNodes, removeRoutes, type RouteOwner } from '../../common/src/routes.js';
import type { Kick } from '../../common/src/kicks.js';
import type { DeviceMode } from '../../common/src/apps.js';
import type { NodeDelivery } from '../../schemas/types.js';
import type { createTaskRunner } from './taskRunner.js';
import type { createPresence } from './presence.js';
import type { PusherConfig } from './config.js';
import { Connection } from './connection.js';
import { kickFrame, reconnectFrame, tokenExpiringFrame, welcomeFrame } from '../../protocol/frames.js';
import { ConnectionTable } from './connectionTable.js';
import { createAppLookup } from './appLookup.js';
import { handleClientFrame, handleControlFrame } from './clientFrames.js';
import { createHandshakeLimiter } from './handshakeLimiter.js';
import { guardConnections } from './connectionGuard.js';
import { checkConnectionCaps } from './connectionCaps.js';
import { createConnectWrites } from './connectWrites.js';
import type { TokenVerifier } from './verifyToken.js';
import { admit, refuseHandshake } from './handshake.js';
import { createResumer } from './resume.js';
import { createFrameHandlers } from './frameHandlers.js';
import { deliverRecord, kickLocal } from './delivery.js';
import { routeOf, startRouteKeeper } from './routeKeeper.js';
import type { PusherMetrics } from './pusherMetrics.js';
import type { createAckWriter } from './ackWriter.js';
import type { TraceWriter } from '../../common/src/traceRecords.js';
import { createTokenClock } from './tokenClock.js';
import { contain } from '../../common/src/containListenerErrors.js';

export interface SocketServerDeps {
  config: PusherConfig;
  logger: Logger;
  redis: Redis;
  apps: AppStore;
  /** Deliveries, acks and attempts (resume reads and attempt writes are batched across connections). */
  store: Pick<DeliveryStore, 'pendingFor' | 'recordAttempts'>;
  verify: TokenVerifier;
  metrics: PusherMetrics;
  acks: ReturnType<typeof createAckWriter>;
  publisher: BatchPublisher;
  upstreamTopic: string;
  taskRunner: ReturnType<typeof createTaskRunner>;
  presence: ReturnType<typeof createPresence>;
  /** Which of these broadcast tasks an operator stopped (their messages are not delivered on connect). */
  stoppedTasks: (taskIds: string[]) => Promise<Set<string>>;
  /** Message traces: what this node wrote, and what devices acked or parked. */
  trace?: TraceWriter;
  /**
   * Registers this node and boot in Redis again (the node heartbeat). Called when Redis
   * comes back after a disconnect, before the routes are rewritten: routes of a boot the
   * registry does not list do not count, so without it they stayed dead until the next beat.
   */
  registerNode?: () => Promise<void>;
}

/** Sent to a socket that a newer socket of the same device replaces (PUSHER_MAX_SOCKETS_PER_DEVICE), before close 4009. */
const REPLACED_REASON = 'replaced by a newer connection of this device';

/**
 * The WebSocket side of a pusher: authenticates before the upgrade, keeps the
 * connection table and the Redis routes, resumes each device from the store
 * before live delivery, and cuts off dead, slow or abusive clients.
 */
export function createSocketServer(server: http.Server, deps: SocketServerDeps) {
  const { config, logger, redis, metrics } = deps;
  const refuse = (socket: Duplex, status: number, code: string, message: string, retryAfterSeconds?: number) =>
    refuseHandshake(config.refusedHandshakeLingerMs, socket, status, code, message, retryAfterSeconds);
  const table = new ConnectionTable();
  const wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
  let accepting = true;
  const appOf = createAppLookup(deps.apps);
  // This run of the node: its routes name it, and the node registry says it is the live one.
  const owner: RouteOwner = { id: config.nodeId, boot: randomBytes(6).toString('base64url') };
  const writes = createConnectWrites({ redis, owner, routeTtlMs: config.routeTtlMs, onWritten: (conns) => deps.presence.online(conns) });
  // A token's lifetime bounds its session: warn before `exp` so the client can send a
  // fresh token (`auth` frame), and close with 4001 if none came.
  const tokenClock = createTokenClock({
    warningMs: config.tokenWarningMs,
    onWarn: contain(logger, 'token-warning', (c: Connection) => c.send(tokenExpiringFrame(c.tokenExpiresAt))),
    onExpire: contain(logger, 'token-expiry', (c: Connection) => c.close(CLOSE.TOKEN_EXPIRED, 'token expired')),
  });

  // Per source address, before anything that costs: token verification, Redis writes, a store read.
  const handshakes = createHandshakeLimiter({ rate: config.handshakeRate, burst: config.handshakeBurst, exempt: config.handshakeExempt });
  // And before that, on the bare TCP connection: how many one address holds, and how long it may take to say anything.
  guardConnections(server, {
    maxPerAddress: config.maxConnectionsPerAddress,
    firstRequestTimeoutMs: config.firstRequestTimeoutMs,
    exempt: config.handshakeExempt,
    onDrop: (reason) => metrics.handshakes.inc({ outcome: reason }),
  });

  server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    // Node's HTTP server stops listening for socket errors once it hands over an upgrade: a
    // peer that resets while the handshake is checked (or refused) would otherwise raise an
    // 'error' with no listener and take the process down. ws adds its own once it takes over.
    const onSocketError = () => socket.destroy();
    socket.on('error', onSocketError);
    void (async () => {
      // A request target URL cannot parse ("http://[", a bad port) is the client's error, not the node's.
      const url = URL.canParse(req.url ?? '/', 'http://x') ? new URL(req.url ?? '/', 'http://x') : undefined;
      if (!url) return refuse(socket, 400, 'INVALID_REQUEST', 'malformed request target; connect to /v1/ws?token=...');
      if (url.pathname !== '/v1/ws') return refuse(socket, 404, 'NOT_FOUND', 'WebSocket endpoint is /v1/ws');
      const rate = handshakes.take(req.socket.remoteAddress);
      if (!rate.ok) {
        metrics.handshakes.inc({ outcome: 'rate_limited' });
        return refuse(socket, 429, 'RATE_LIMITED', 'too many connection attempts from this address; retry later', rate.retryAfterSeconds);
      }
      if (!accepting) return refuse(socket, 503, 'DRAINING', 'this node is not accepting connections');
      const admission = await admit({ verify: deps.verify, appOf, logger }, url.searchParams.get('token') ?? '', req.headers.origin);
      if (!admission.ok) {
        if (admission.outcome) metrics.handshakes.inc({ outcome: admission.outcome });
        return refuse(socket, admission.status, admission.code, admission.message, admission.retryAfterSeconds);
      }
      const { claims, app } = admission;
      const caps = checkConnectionCaps(table, claims.app, claims.user, claims.device, config);
      if (!caps.ok) {
        metrics.handshakes.inc({ outcome: 'too_many_connections' });
        return refuse(
          socket,
          429,
          'TOO_MANY_CONNECTIONS',
          `user ${claims.user} already has ${config.maxSocketsPerUser} connections on this node; close one first`,
        );
      }
      // The 101 response and the welcome frame leave in one write.
      socket.cork();
      try {
        wss.handleUpgrade(req, socket, head, (ws) => {
          socket.off('error', onSocketError);
          metrics.handshakes.inc({ outcome: 'ok' });
          // The device reconnected (or opened another socket): its oldest sockets make way, told why.
          for (const old of caps.replace) {
            old.send(kickFrame(REPLACED_REASON));
            old.close(CLOSE.KICKED, REPLACED_REASON);
          }
          void open(ws, claims.app, claims.user, claims.device, app.openGroups ? 'open' : claims.groups, app.deviceMode, claims.exp * 1000);
        });
      } finally {
        socket.uncork();
      }
    })().catch((err: unknown) => {
      logger.error({ err }, 'upgrade failed');
      refuse(socket, 503, 'UNAVAILABLE', 'cannot accept the connection now');
    });
  });

  // One set of frame handlers for every connection (they receive it as an argument).
  const frameHandlers = createFrameHandlers({ ...deps, table, tokenClock });

  const open = async (ws: WebSocket, app: string, user: string, device: string, grants: string[] | 'open', deviceMode: DeviceMode, tokenExpiresAt: number) => {
    const conn = new Connection(ws, randomBytes(6).toString('base64url'), app, user, device, grants, config);
    conn.tokenExpiresAt = tokenExpiresAt;
    table.add(conn);
    conn.send(welcomeFrame(config.nodeId, conn.id, config.heartbeatMs));
    // Control frames count against the frame rate too (ws answers pings by itself).
    ws.on('pong', () => handleControlFrame(conn, frameHandlers));
    ws.on('ping', () => handleControlFrame(conn, frameHandlers));
    ws.on('message', (data, isBinary) => handleClientFrame(conn, data, isBinary, frameHandlers));
    ws.on('error', (err) => logger.debug({ err: err.message, conn: conn.id }, 'socket error'));
    ws.on(
      'close',
      contain(logger, 'socket-close', (code: number) => {
        conn.closed = true;
        tokenClock.untrack(conn);
        const emptied = table.remove(conn);
        if (emptied.length > 0)
          void removeGroupNodes(
            redis,
            config.nodeId,
            emptied.map((group) => ({ app: conn.app, group })),
          ).catch(() => undefined);
        metrics.closes.inc({ code: String(conn.closeCode ?? code) });
        void removeRoutes(redis, [routeOf(conn)]).catch(() => undefined);
        // OFFLINE after ONLINE, with its epoch (nothing if ONLINE never went out).
        deps.presence.offline(conn);
      }),
    );
    tokenClock.track(conn); // after the welcome: a token close to expiry is warned at once
    try {
      // Route first, then read the store: a message stored after the read is routed
      // here live; one stored before it is in the read. Nothing falls in between.
      // The route, last node, presence epoch and (one device at a time) the kick of the
      // user's other connections go out with those of other connections opening now.
      const failed = await writes.add(conn, deviceMode === 'single');
      if (failed.has(conn)) throw new Error('route not written');
      await resumer.resume(conn);
    } catch (err) {
      logger.warn({ err: (err as Error).message, app, user, device }, 'resume failed; closing');
      conn.close(CLOSE.SERVER_ERROR, 'could not load undelivered messages');
    }
  };

  const resumer = createResumer(deps);

  const routeKeeper = startRouteKeeper({ config, logger, redis, table, owner, registerNode: deps.registerNode, catchUp: () => resumer.catchUp(table.all()) });

  const deliveryDeps = { ...deps, table };

  return {
    table,
    /** The cached app lookup of handshakes (the session check uses it too). */
    appOf,
    /** This run's boot id: the node heartbeat registers it, and only routes carrying it count. */
    boot: owner.boot,
    /** Writes a routed message to the local connections it is for (task messages through the task runner). */
    deliver: (rec: NodeDelivery) => deliverRecord(rec, deliveryDeps),
    /** Closes the matching local connections with a kick frame and 4009. */
    kick: (k: Kick) => kickLocal(k, table, logger),
    isAccepting: () => accepting,
    /**
     * Drain: refuse new sockets, tell every client to reconnect to one of
     * `others`, and wait (bounded) for them to leave. Clients that are still
     * here at the deadline are closed by close(). Persistent messages are not
     * at risk: a client that moves resumes from the store on its new node.
     */
    stopAccepting() {
      accepting = false;
    },
    async drain(others: string[], timeoutMs: number) {
      accepting = false;
      if (others.length === 0) return table.size; // nowhere to send them: close() says 1001
      const frame = reconnectFrame(others);
      for (const conn of table.all()) conn.send(frame);
      const deadline = Date.now() + timeoutMs;
      while (table.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      return table.size;
    },
    async close() {
      accepting = false;
      routeKeeper.close();
      tokenClock.close();
      const all = [...table.all()];
      for (const conn of all) conn.close(CLOSE.GOING_AWAY, 'server shutting down');
      await removeRoutes(redis, all.map(routeOf)).catch(() => undefined);
      await removeGroupNodes(redis, config.nodeId, table.groups()).catch(() => undefined);
      wss.close();
    },
  };
}
