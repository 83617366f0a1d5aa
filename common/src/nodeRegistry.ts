import type { Redis } from 'ioredis';

/**
 * Live pusher nodes in Redis. A node heartbeats its entry; one that stops
 * (crash, partition) drops out when its expiry passes, and routes that point
 * at it are then ignored by the dispatcher.
 *
 *   push:nodes            zset  nodeId -> expiry (ms since epoch)
 *   push:node:<nodeId>    hash  url, connections, draining, adminUrl
 *   push:lastnode:<app>|<user>  string  the node the user last connected to
 *
 * (All keys carry REDIS_KEY_PREFIX in front.)
 */
const NODES = 'push:nodes';
const nodeKey = (id: string) => `push:node:${id}`;
export const lastNodeKey = (app: string, user: string) => `push:lastnode:${app}|${user}`;

export interface NodeInfo {
  id: string;
  url: string;
  connections: number;
  draining: boolean;
  /** HTTP base URL of the node's health, metrics and admin endpoints. */
  adminUrl?: string;
}

export async function heartbeatNode(redis: Redis, info: NodeInfo, ttlMs: number): Promise<void> {
  const expiry = Date.now() + ttlMs;
  await redis
    .multi()
    .zadd(NODES, expiry, info.id)
    .hset(nodeKey(info.id), { url: info.url, connections: info.connections, draining: info.draining ? 1 : 0, ...(info.adminUrl ? { adminUrl: info.adminUrl } : {}) })
    .pexpire(nodeKey(info.id), ttlMs)
    .exec();
}

export async function removeNode(redis: Redis, id: string): Promise<void> {
  await redis.multi().zrem(NODES, id).del(nodeKey(id)).exec();
}

/** Ids of nodes whose heartbeat has not expired. */
export async function liveNodeIds(redis: Redis): Promise<string[]> {
  return redis.zrangebyscore(NODES, Date.now(), '+inf');
}

export async function liveNodes(redis: Redis): Promise<NodeInfo[]> {
  const ids = await liveNodeIds(redis);
  if (ids.length === 0) return [];
  const pipeline = redis.pipeline();
  for (const id of ids) pipeline.hgetall(nodeKey(id));
  const results = (await pipeline.exec()) ?? [];
  const nodes: NodeInfo[] = [];
  ids.forEach((id, i) => {
    const h = results[i]?.[1] as Record<string, string> | undefined;
    if (!h?.url) return;
    nodes.push({ id, url: h.url, connections: Number(h.connections ?? 0), draining: h.draining === '1', ...(h.adminUrl ? { adminUrl: h.adminUrl } : {}) });
  });
  return nodes;
}

/** Drops entries that expired long ago so the set does not grow with every node ever started. */
export async function pruneNodes(redis: Redis, olderThanMs = 3_600_000): Promise<void> {
  await redis.zremrangebyscore(NODES, '-inf', Date.now() - olderThanMs);
}
