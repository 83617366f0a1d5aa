import type { ChainableCommander, Redis } from 'ioredis';
import { BOOTS_KEY, parseBoots } from './nodeRegistry.js';

/**
 * Where each user's devices are connected, in Redis:
 *
 *   push:r:<app>|<user>   hash  "<device>|<connId>" -> "<nodeId>|<bootId>|<expiresAtMs>"
 *
 * One field per connection, so a device that reconnects before its old
 * socket is noticed dead has two entries for a moment, and a close removes
 * exactly its own. A route lives as long as the process that wrote it: the
 * boot id names that process, and the node registry (push:boots) says which
 * boot of each node is running and until when its heartbeat holds. So a route
 * needs no refresh while its node lives, a crashed node's routes stop counting
 * when its heartbeat lapses, and a node restarted under the same id does not
 * inherit the routes of its previous life (those are deleted when read).
 * Fields also carry a long expiry (Redis 7.0 has no per-field TTL), rewritten
 * once per half of it; the key's TTL moves with them and cleans up abandoned users.
 */
export const routeKey = (app: string, user: string) => `push:r:${app}|${user}`;

export interface RouteEntry {
  app: string;
  user: string;
  device: string;
  connId: string;
}

export interface Route {
  device: string;
  connId: string;
  nodeId: string;
  expiresAt: number;
}

/** The process that owns a route: a node id and the boot id of its current run. */
export interface RouteOwner {
  id: string;
  boot: string;
}

const field = (r: RouteEntry) => `${r.device}|${r.connId}`;

/** Queues the commands that add or refresh one route on `pipeline` (the caller executes it). */
export function addRouteCommands(pipeline: ChainableCommander, owner: RouteOwner, e: RouteEntry, ttlMs: number, expiresAt: number): void {
  const key = routeKey(e.app, e.user);
  pipeline.hset(key, field(e), `${owner.id}|${owner.boot}|${expiresAt}`);
  pipeline.pexpire(key, ttlMs);
}

/** Adds or refreshes routes for connections of `owner`, pipelined. */
export async function putRoutes(redis: Redis, owner: RouteOwner, entries: RouteEntry[], ttlMs: number): Promise<void> {
  if (entries.length === 0) return;
  const expiresAt = Date.now() + ttlMs;
  const pipeline = redis.pipeline();
  for (const e of entries) addRouteCommands(pipeline, owner, e, ttlMs, expiresAt);
  const results = (await pipeline.exec()) ?? [];
  for (const [err] of results) if (err) throw err;
}

export async function removeRoutes(redis: Redis, entries: RouteEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const pipeline = redis.pipeline();
  for (const e of entries) pipeline.hdel(routeKey(e.app, e.user), field(e));
  await pipeline.exec();
}

/**
 * The live routes in one user's hash, and the fields written by an earlier
 * boot of a node that has restarted since (`stale`, safe to delete: no
 * process will write them again).
 */
function parseRoutes(hash: Record<string, string> | undefined, boots: Map<string, { boot: string; expiresAt: number }>, now: number, stale: string[]): Route[] {
  const routes: Route[] = [];
  for (const f in hash) {
    const v = hash[f]!;
    const sep = f.lastIndexOf('|');
    const vsep = v.lastIndexOf('|');
    const expiresAt = Number(v.slice(vsep + 1));
    if (sep < 0 || vsep < 0 || !(expiresAt > now)) continue;
    const bsep = v.lastIndexOf('|', vsep - 1);
    // A value without a boot id was written by an older pusher: its own expiry is all it has.
    const nodeId = bsep < 0 ? v.slice(0, vsep) : v.slice(0, bsep);
    if (bsep >= 0) {
      const running = boots.get(nodeId);
      if (!running) continue;
      if (running.boot !== v.slice(bsep + 1, vsep)) {
        stale.push(f);
        continue;
      }
      if (!(running.expiresAt > now)) continue;
    }
    routes.push({ device: f.slice(0, sep), connId: f.slice(sep + 1), nodeId, expiresAt });
  }
  return routes;
}

/**
 * Live routes of many users in one pipelined round trip: routes of running
 * nodes (heartbeat not lapsed) written by their current boot. Fields left by
 * a previous boot of a restarted node are deleted on the way.
 */
export async function lookupRoutes(redis: Redis, users: { app: string; user: string }[]): Promise<Route[][]> {
  if (users.length === 0) return [];
  const pipeline = redis.pipeline();
  pipeline.hgetall(BOOTS_KEY);
  for (const u of users) pipeline.hgetall(routeKey(u.app, u.user));
  const results = (await pipeline.exec()) ?? [];
  const [bootsErr, bootsHash] = results[0] ?? [];
  if (bootsErr) throw bootsErr;
  const boots = parseBoots(bootsHash as Record<string, string>);
  const now = Date.now();
  let cleanup: ChainableCommander | undefined;
  const found = users.map((u, i) => {
    const [err, hash] = results[i + 1] ?? [];
    if (err) throw err;
    const stale: string[] = [];
    const routes = parseRoutes(hash as Record<string, string>, boots, now, stale);
    if (stale.length > 0) (cleanup ??= redis.pipeline()).hdel(routeKey(u.app, u.user), ...stale);
    return routes;
  });
  if (cleanup) void cleanup.exec().catch(() => undefined);
  return found;
}

/**
 * Which nodes have subscribers of a group (route by node, not by user):
 *
 *   push:g:<app>|<group>   hash  nodeId -> expiresAtMs
 *
 * A pusher adds itself with its first local subscriber, removes itself with
 * the last, and refreshes its groups with every heartbeat.
 */
export const groupKey = (app: string, group: string) => `push:g:${app}|${group}`;

export async function putGroupNodes(redis: Redis, nodeId: string, groups: { app: string; group: string }[], ttlMs: number): Promise<void> {
  if (groups.length === 0) return;
  const expiresAt = String(Date.now() + ttlMs);
  const pipeline = redis.pipeline();
  for (const g of groups) {
    pipeline.hset(groupKey(g.app, g.group), nodeId, expiresAt);
    pipeline.pexpire(groupKey(g.app, g.group), ttlMs);
  }
  await pipeline.exec();
}

export async function removeGroupNodes(redis: Redis, nodeId: string, groups: { app: string; group: string }[]): Promise<void> {
  if (groups.length === 0) return;
  const pipeline = redis.pipeline();
  for (const g of groups) pipeline.hdel(groupKey(g.app, g.group), nodeId);
  await pipeline.exec();
}

/** Nodes with live subscribers of a group. */
export async function groupNodes(redis: Redis, app: string, group: string): Promise<string[]> {
  const hash = await redis.hgetall(groupKey(app, group));
  const now = Date.now();
  return Object.entries(hash)
    .filter(([, exp]) => Number(exp) > now)
    .map(([node]) => node);
}
