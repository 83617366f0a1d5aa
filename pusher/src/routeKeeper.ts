import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import { contain } from '../../platform/http/containListenerErrors.js';
import { putGroupNodes, putRoutes, type RouteEntry, type RouteOwner } from '../../store/routeTable.js';
import { CLOSE } from '../../protocol/codes.js';
import type { PusherConfig } from './config.js';
import type { Connection } from './connection.js';
import type { ConnectionTable } from './connectionTable.js';

export const routeOf = (c: Connection): RouteEntry => ({ app: c.app, user: c.user, device: c.device, connId: c.id });

/** Routes rewritten per heartbeat: each connection's once per `beats` ticks, chosen by its id so the work is spread evenly. */
const refreshSlot = (c: Connection, beats: number) => (c.id.charCodeAt(0) * 4096 + c.id.charCodeAt(1) * 64 + c.id.charCodeAt(2)) % beats;

export interface RouteKeeperDeps {
  config: PusherConfig;
  logger: Logger;
  redis: Redis;
  table: ConnectionTable;
  owner: RouteOwner;
  /** Registers the node again (its heartbeat), before routes are rewritten after Redis came back. */
  registerNode?: () => Promise<void>;
  /** Every open connection reads the store again (after Redis came back). */
  catchUp: () => void;
}

/**
 * The heartbeat: ping everyone, cut off who did not answer the last ping. Routes need no
 * refresh while this node lives (see routes.ts); each is rewritten once per half its TTL, a
 * slice of the connections per tick, and the group index with the first slice. When Redis
 * comes back after a disconnect (it may have lost its data: a restart without persistence),
 * every route and group entry is written again at once, then every connection reads the store
 * again: what was routed while its route was gone waits there.
 */
export function startRouteKeeper(deps: RouteKeeperDeps): { close(): void } {
  const { config, logger, redis, table, owner } = deps;
  const refreshBeats = Math.max(1, Math.floor(config.routeTtlMs / 2 / config.heartbeatMs));
  let tick = 0;
  const refreshRoutes = async (conns: Connection[], groups: boolean) => {
    // Slice by slice, each built when it is sent: a connection closed meanwhile (its route
    // already deleted) must not get it back.
    for (let i = 0; i < conns.length; i += 1000) {
      const slice: RouteEntry[] = [];
      for (let j = i; j < i + 1000 && j < conns.length; j++) if (!conns[j]!.closed) slice.push(routeOf(conns[j]!));
      await putRoutes(redis, owner, slice, config.routeTtlMs);
    }
    if (groups) await putGroupNodes(redis, config.nodeId, table.groups(), config.routeTtlMs);
  };
  const heartbeat = setInterval(
    contain(logger, 'heartbeat', () => {
      const slot = tick++ % refreshBeats;
      const routes: Connection[] = [];
      for (const conn of table.all()) {
        if (!conn.alive) {
          conn.closeCode = CLOSE.HEARTBEAT_TIMEOUT;
          conn.ws.terminate();
          continue;
        }
        conn.alive = false;
        conn.ws.ping();
        if (refreshBeats === 1 || refreshSlot(conn, refreshBeats) === slot) routes.push(conn);
      }
      if (routes.length > 0 || slot === 0)
        void refreshRoutes(routes, slot === 0).catch((err: Error) => logger.warn({ err: err.message }, 'route refresh failed'));
    }),
    config.heartbeatMs,
  );
  let redisWasReady = redis.status === 'ready';
  // Registration first: a route counts only while the registry lists its boot.
  const onRedisReady = () => {
    if (!redisWasReady) return void (redisWasReady = true);
    void (async () => {
      await deps.registerNode?.();
      await refreshRoutes([...table.all()], true);
      deps.catchUp();
    })().catch((err: Error) => logger.warn({ err: err.message }, 'route rewrite after reconnect failed'));
  };
  redis.on('ready', onRedisReady);
  return {
    close() {
      clearInterval(heartbeat);
      redis.off('ready', onRedisReady);
    },
  };
}
