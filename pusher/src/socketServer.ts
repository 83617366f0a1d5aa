import type http from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocketServer, type WebSocket } from 'ws';
import type { Redis } from 'ioredis';
import type { App, AppStore, DeviceMode } from '../../store/apps.js';
import type { DeliveryStore } from '../../store/deliveryStore.js';
import type { Logger } from '../../platform/logger.js';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { CLOSE } from '../../protocol/codes.js';
import { removeGroupNodes, removeRoutes, type RouteOwner } from '../../store/routeTable.js';
import type { Kick } from '../../store/kicks.js';
import type { NodeDelivery } from '../../schemas/types.js';
import type { TokenClaims } from '../../protocol/tokens.js';
import type { createTaskRunner } from './taskRunner.js';
import type { createPresence } from './presence.js';
import type { PusherConfig } from './config.js';
import { Connection } from './connection.js';
import { kickFrame, reconnectFrame, tokenExpiringFrame, welcomeFrame } from '../../protocol/frames.js';
import { ConnectionTable } from './connectionTable.js';
import { createAppLookup } from './appLookup.js';
import { handleClientFrame, handleControlFrame, type FrameHandlers } from './clientFrames.js';
import { createHandshakeLimiter } from './handshakeLimiter.js';
import { guardConnections } from './connectionGuard.js';
import { checkConnectionCaps } from './connectionCaps.js';
import { createConnectWrites } from './connectWrites.js';
import type { TokenVerifier } from './verifyToken.js';
import { admit, refuseHandshake } from './handshake.js';
import { createResumer, type Resumer } from './resume.js';
import { createFrameHandlers } from './frameHandlers.js';
import { deliverRecord, kickLocal, type DeliveryDeps } from './delivery.js';
import { routeOf, startRouteKeeper } from './routeKeeper.js';
import type { PusherMetrics } from './pusherMetrics.js';
import type { createAckWriter } from './ackWriter.js';
import type { TraceWriter } from '../../store/traceRecords.js';
import { createTokenClock } from './tokenClock.js';
import { contain } from '../../platform/http/containListenerErrors.js';

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

/** A handshake whose token, app and origin passed: the token's claims and its app. */
interface Admitted {
  claims: TokenClaims;
  app: App;
}

/**
 * The WebSocket side of a pusher: authenticates before the upgrade, keeps the
 * connection table and the Redis routes, resumes each device from the store
 * before live delivery, and cuts off dead, slow or abusive clients.
 */
export class SocketServer {
  readonly table = new ConnectionTable();
  /** The cached app lookup of handshakes (the session check uses it too). */
  readonly appOf: (id: string) => Promise<App | undefined>;
  /** This run's boot id: the node heartbeat registers it, and only routes carrying it count. */
  readonly boot: string;
  private readonly wss: WebSocketServer;
  private accepting = true;
  private readonly writes: ReturnType<typeof createConnectWrites>;
  private readonly tokenClock: ReturnType<typeof createTokenClock>;
  private readonly handshakes: ReturnType<typeof createHandshakeLimiter>;
  private readonly frameHandlers: FrameHandlers;
  private readonly resumer: Resumer;
  private readonly routeKeeper: { close(): void };
  private readonly deliveryDeps: DeliveryDeps;

  constructor(
    server: http.Server,
    private readonly deps: SocketServerDeps,
  ) {
    const { config, logger, redis, metrics } = deps;
    const table = this.table;
    this.wss = new WebSocketServer({ noServer: true, maxPayload: config.maxFrameBytes, perMessageDeflate: false, clientTracking: false });
    this.appOf = createAppLookup(deps.apps);
    // This run of the node: its routes name it, and the node registry says it is the live one.
    const owner: RouteOwner = { id: config.nodeId, boot: randomBytes(6).toString('base64url') };
    this.boot = owner.boot;
    this.writes = createConnectWrites({ redis, owner, routeTtlMs: config.routeTtlMs, onWritten: (conns) => deps.presence.online(conns) });
    // A token's lifetime bounds its session: warn before `exp` so the client can send a
    // fresh token (`auth` frame), and close with 4001 if none came.
    this.tokenClock = createTokenClock({
      warningMs: config.tokenWarningMs,
      onWarn: contain(logger, 'token-warning', (c: Connection) => c.send(tokenExpiringFrame(c.tokenExpiresAt))),
      onExpire: contain(logger, 'token-expiry', (c: Connection) => c.close(CLOSE.TOKEN_EXPIRED, 'token expired')),
    });

    // Per source address, before anything that costs: token verification, Redis writes, a store read.
    this.handshakes = createHandshakeLimiter({ rate: config.handshakeRate, burst: config.handshakeBurst, exempt: config.handshakeExempt });
    // And before that, on the bare TCP connection: how many one address holds, and how long it may take to say anything.
    guardConnections(server, {
      maxPerAddress: config.maxConnectionsPerAddress,
      firstRequestTimeoutMs: config.firstRequestTimeoutMs,
      exempt: config.handshakeExempt,
      onDrop: (reason) => metrics.handshakes.inc({ outcome: reason }),
    });

    server.on('upgrade', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => this.onUpgrade(req, socket, head));

    // One set of frame handlers for every connection (they receive it as an argument).
    this.frameHandlers = createFrameHandlers({ ...deps, table, tokenClock: this.tokenClock });
    this.resumer = createResumer(deps);
    this.routeKeeper = startRouteKeeper({
      config,
      logger,
      redis,
      table,
      owner,
      registerNode: deps.registerNode,
      catchUp: () => this.resumer.catchUp(table.all()),
    });
    this.deliveryDeps = { ...deps, table };
  }

  /** Writes a routed message to the local connections it is for (task messages through the task runner). */
  deliver(rec: NodeDelivery): void {
    deliverRecord(rec, this.deliveryDeps);
  }

  /** Closes the matching local connections with a kick frame and 4009. */
  kick(k: Kick): void {
    kickLocal(k, this.table, this.deps.logger);
  }

  isAccepting(): boolean {
    return this.accepting;
  }

  /** Refuses new sockets (a drain's first step, before the node heartbeat says it is draining). */
  stopAccepting(): void {
    this.accepting = false;
  }

  /**
   * Drain: refuse new sockets, tell every client to reconnect to one of
   * `others`, and wait (bounded) for them to leave. Clients that are still
   * here at the deadline are closed by close(). Persistent messages are not
   * at risk: a client that moves resumes from the store on its new node.
   */
  async drain(others: string[], timeoutMs: number): Promise<number> {
    const table = this.table;
    this.accepting = false;
    if (others.length === 0) return table.size; // nowhere to send them: close() says 1001
    const frame = reconnectFrame(others);
    for (const conn of table.all()) conn.send(frame);
    const deadline = Date.now() + timeoutMs;
    while (table.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    return table.size;
  }

  async close(): Promise<void> {
    const { config, redis } = this.deps;
    this.accepting = false;
    this.routeKeeper.close();
    this.tokenClock.close();
    const all = [...this.table.all()];
    for (const conn of all) conn.close(CLOSE.GOING_AWAY, 'server shutting down');
    await removeRoutes(redis, all.map(routeOf)).catch(() => undefined);
    await removeGroupNodes(redis, config.nodeId, this.table.groups()).catch(() => undefined);
    this.wss.close();
  }

  private onUpgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // Node's HTTP server stops listening for socket errors once it hands over an upgrade: a
    // peer that resets while the handshake is checked (or refused) would otherwise raise an
    // 'error' with no listener and take the process down. ws adds its own once it takes over.
    const onSocketError = () => socket.destroy();
    socket.on('error', onSocketError);
    void (async () => {
      const admitted = await this.checkHandshake(req, socket);
      if (admitted) this.upgrade(req, socket, head, onSocketError, admitted);
    })().catch((err: unknown) => {
      this.deps.logger.error({ err }, 'upgrade failed');
      this.refuse(socket, 503, 'UNAVAILABLE', 'cannot accept the connection now');
    });
  }

  /** The handshake's checks up to the token, cheapest first; a failed one answers the refusal and returns nothing. */
  private async checkHandshake(req: http.IncomingMessage, socket: Duplex): Promise<Admitted | undefined> {
    const { metrics, logger } = this.deps;
    // A request target URL cannot parse ("http://[", a bad port) is the client's error, not the node's.
    const url = URL.canParse(req.url ?? '/', 'http://x') ? new URL(req.url ?? '/', 'http://x') : undefined;
    if (!url) return this.refuse(socket, 400, 'INVALID_REQUEST', 'malformed request target; connect to /v1/ws?token=...');
    if (url.pathname !== '/v1/ws') return this.refuse(socket, 404, 'NOT_FOUND', 'WebSocket endpoint is /v1/ws');
    const rate = this.handshakes.take(req.socket.remoteAddress);
    if (!rate.ok) {
      metrics.handshakes.inc({ outcome: 'rate_limited' });
      return this.refuse(socket, 429, 'RATE_LIMITED', 'too many connection attempts from this address; retry later', rate.retryAfterSeconds);
    }
    if (!this.accepting) return this.refuse(socket, 503, 'DRAINING', 'this node is not accepting connections');
    const admission = await admit({ verify: this.deps.verify, appOf: this.appOf, logger }, url.searchParams.get('token') ?? '', req.headers.origin);
    if (!admission.ok) {
      if (admission.outcome) metrics.handshakes.inc({ outcome: admission.outcome });
      return this.refuse(socket, admission.status, admission.code, admission.message, admission.retryAfterSeconds);
    }
    return { claims: admission.claims, app: admission.app };
  }

  private refuse(socket: Duplex, status: number, code: string, message: string, retryAfterSeconds?: number): undefined {
    refuseHandshake(this.deps.config.refusedHandshakeLingerMs, socket, status, code, message, retryAfterSeconds);
    return undefined;
  }

  /**
   * The connection caps, then the 101 answer, the device's older sockets making way, and the
   * connection opened. One synchronous step: the caps see every socket admitted before it.
   */
  private upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer, onSocketError: () => void, { claims, app }: Admitted): void {
    const { config, metrics } = this.deps;
    const caps = checkConnectionCaps(this.table, claims.app, claims.user, claims.device, config);
    if (!caps.ok) {
      metrics.handshakes.inc({ outcome: 'too_many_connections' });
      this.refuse(socket, 429, 'TOO_MANY_CONNECTIONS', `user ${claims.user} already has ${config.maxSocketsPerUser} connections on this node; close one first`);
      return;
    }
    // The 101 response and the welcome frame leave in one write.
    socket.cork();
    try {
      this.wss.handleUpgrade(req, socket, head, (ws) => {
        socket.off('error', onSocketError);
        metrics.handshakes.inc({ outcome: 'ok' });
        // The device reconnected (or opened another socket): its oldest sockets make way, told why.
        for (const old of caps.replace) {
          old.send(kickFrame(REPLACED_REASON));
          old.close(CLOSE.KICKED, REPLACED_REASON);
        }
        void this.open(ws, claims.app, claims.user, claims.device, app.openGroups ? 'open' : claims.groups, app.deviceMode, claims.exp * 1000);
      });
    } finally {
      socket.uncork();
    }
  }

  private async open(
    ws: WebSocket,
    app: string,
    user: string,
    device: string,
    grants: string[] | 'open',
    deviceMode: DeviceMode,
    tokenExpiresAt: number,
  ): Promise<void> {
    const { config, logger } = this.deps;
    const conn = new Connection(ws, randomBytes(6).toString('base64url'), app, user, device, grants, config);
    conn.tokenExpiresAt = tokenExpiresAt;
    this.table.add(conn);
    conn.send(welcomeFrame(config.nodeId, conn.id, config.heartbeatMs));
    this.listen(conn, ws);
    this.tokenClock.track(conn); // after the welcome: a token close to expiry is warned at once
    try {
      // Route first, then read the store: a message stored after the read is routed
      // here live; one stored before it is in the read. Nothing falls in between.
      // The route, last node, presence epoch and (one device at a time) the kick of the
      // user's other connections go out with those of other connections opening now.
      const failed = await this.writes.add(conn, deviceMode === 'single');
      if (failed.has(conn)) throw new Error('route not written');
      await this.resumer.resume(conn);
    } catch (err) {
      logger.warn({ err: (err as Error).message, app, user, device }, 'resume failed; closing');
      conn.close(CLOSE.SERVER_ERROR, 'could not load undelivered messages');
    }
  }

  /** The socket's events: client frames, control frames, errors and its close. */
  private listen(conn: Connection, ws: WebSocket): void {
    const { logger } = this.deps;
    const frameHandlers = this.frameHandlers;
    // Control frames count against the frame rate too (ws answers pings by itself).
    ws.on('pong', () => handleControlFrame(conn, frameHandlers));
    ws.on('ping', () => handleControlFrame(conn, frameHandlers));
    ws.on('message', (data, isBinary) => handleClientFrame(conn, data, isBinary, frameHandlers));
    ws.on('error', (err) => logger.debug({ err: err.message, conn: conn.id }, 'socket error'));
    ws.on(
      'close',
      contain(logger, 'socket-close', (code: number) => this.onClose(conn, code)),
    );
  }

  /** A closed socket leaves the table, its routes and its emptied groups' index, and goes offline. */
  private onClose(conn: Connection, code: number): void {
    const { config, redis, metrics } = this.deps;
    conn.closed = true;
    this.tokenClock.untrack(conn);
    const emptied = this.table.remove(conn);
    if (emptied.length > 0)
      void removeGroupNodes(
        redis,
        config.nodeId,
        emptied.map((group) => ({ app: conn.app, group })),
      ).catch(() => undefined);
    metrics.closes.inc({ code: String(conn.closeCode ?? code) });
    void removeRoutes(redis, [routeOf(conn)]).catch(() => undefined);
    // OFFLINE after ONLINE, with its epoch (nothing if ONLINE never went out).
    this.deps.presence.offline(conn);
  }
}

export function createSocketServer(server: http.Server, deps: SocketServerDeps): SocketServer {
  return new SocketServer(server, deps);
}
