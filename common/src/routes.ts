import type { Redis } from 'ioredis';

/**
 * Where each user's devices are connected, in Redis:
 *
 *   push:r:<app>|<user>   hash  "<device>|<connId>" -> "<nodeId>|<expiresAtMs>"
 *
 * One field per connection, so a device that reconnects before its old
 * socket is noticed dead has two entries for a moment, and a close removes
 * exactly its own. Fields carry their own expiry (Redis 7.0 has no per-field
 * TTL); the key's TTL is refreshed with them and cleans up abandoned users.
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

const field = (r: RouteEntry) => `${r.device}|${r.connId}`;

/** Adds or refreshes routes for connections on `nodeId`, pipelined. */
export async function putRoutes(redis: Redis, nodeId: string, entries: RouteEntry[], ttlMs: number): Promise<void> {
  if (entries.length === 0) return;
  const expiresAt = Date.now() + ttlMs;
  const pipeline = redis.pipeline();
  for (const e of entries) {
    const key = routeKey(e.app, e.user);
    pipeline.hset(key, field(e), `${nodeId}|${expiresAt}`);
    pipeline.pexpire(key, ttlMs);
  }
  await pipeline.exec();
}

export async function removeRoutes(redis: Redis, entries: RouteEntry[]): Promise<void> {
  if (entries.length === 0) return;
  const pipeline = redis.pipeline();
  for (const e of entries) pipeline.hdel(routeKey(e.app, e.user), field(e));
  await pipeline.exec();
}

function parseRoutes(hash: Record<string, string> | undefined, now: number): Route[] {
  const routes: Route[] = [];
  for (const [f, v] of Object.entries(hash ?? {})) {
    const sep = f.lastIndexOf('|');
    const vsep = v.lastIndexOf('|');
    const expiresAt = Number(v.slice(vsep + 1));
    if (sep < 0 || vsep < 0 || !(expiresAt > now)) continue;
    routes.push({ device: f.slice(0, sep), connId: f.slice(sep + 1), nodeId: v.slice(0, vsep), expiresAt });
  }
  return routes;
}

/** Live routes of many users in one pipelined round trip. */
export async function lookupRoutes(redis: Redis, users: { app: string; user: string }[]): Promise<Route[][]> {
  if (users.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const u of users) pipeline.hgetall(routeKey(u.app, u.user));
  const results = (await pipeline.exec()) ?? [];
  const now = Date.now();
  return users.map((_, i) => {
    const [err, hash] = results[i] ?? [];
    if (err) throw err;
    return parseRoutes(hash as Record<string, string>, now);
  });
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
