import type { Redis } from 'ioredis';

/**
 * Live pusher nodes in Redis. A node heartbeats its entry; one that stops
 * (crash, partition) drops out when its expiry passes, and routes that point
 * at it are then ignored by the dispatcher.
 *
 *   push:nodes            zset  nodeId -> expiry (ms since epoch)
 *   push:boots            hash  nodeId -> "<bootId>|<expiry>": which run of the node is live
 *   push:node:<nodeId>    hash  url, connections, draining, adminUrl
 *   push:lastnode:<app>|<user>  string  the node the user last connected to
 *
 * (All keys carry REDIS_KEY_PREFIX in front.)
 */
const NODES = 'push:nodes';
/** Routes name the boot that wrote them (see routes.ts); this hash says which boot of each node is running. */
export const BOOTS_KEY = 'push:boots';
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

/** Registers or refreshes a node; `boot` (a fresh id per process start) makes its routes count. */
export async function heartbeatNode(redis: Redis, info: NodeInfo & { boot?: string }, ttlMs: number): Promise<void> {
  const expiry = Date.now() + ttlMs;
  const tx = redis.multi();
  if (info.boot) tx.hset(BOOTS_KEY, info.id, `${info.boot}|${expiry}`);
  await tx
    .zadd(NODES, expiry, info.id)
    .hset(nodeKey(info.id), {
      url: info.url,
      connections: info.connections,
      draining: info.draining ? 1 : 0,
      ...(info.adminUrl ? { adminUrl: info.adminUrl } : {}),
    })
    .pexpire(nodeKey(info.id), ttlMs)
    .exec();
}

export async function removeNode(redis: Redis, id: string): Promise<void> {
  await redis.multi().zrem(NODES, id).del(nodeKey(id)).hdel(BOOTS_KEY, id).exec();
}

/** The running boot of each node and when its heartbeat lapses, from the push:boots hash. */
export function parseBoots(hash: Record<string, string> | undefined): Map<string, { boot: string; expiresAt: number }> {
  const boots = new Map<string, { boot: string; expiresAt: number }>();
  for (const id in hash) {
    const v = hash[id]!;
    const sep = v.lastIndexOf('|');
    if (sep > 0) boots.set(id, { boot: v.slice(0, sep), expiresAt: Number(v.slice(sep + 1)) });
  }
  return boots;
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

/**
 * Drops entries whose heartbeat lapsed more than `olderThanMs` ago, so push:nodes
 * and push:boots do not grow with every node ever started (node ids of pushers on
 * ephemeral ports or containers are new on each start). One script, so it is
 * atomic and any number of pushers may run it on every heartbeat: a node that
 * comes back simply registers again. Its push:node:<id> hash expires on its own.
 * Returns the ids dropped.
 */
const PRUNE = `local before = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local boots = redis.call('HGETALL', KEYS[2])
local gone = {}
for i = 1, #boots, 2 do
  local v = boots[i + 1]
  local exp = tonumber(string.match(v, '|(%d+)$'))
  if exp == nil or exp < before then gone[#gone + 1] = boots[i] end
end
for i = 1, #gone, 500 do redis.call('HDEL', KEYS[2], unpack(gone, i, math.min(i + 499, #gone))) end
return gone`;

export async function pruneNodes(redis: Redis, olderThanMs = 3_600_000): Promise<string[]> {
  return (await redis.eval(PRUNE, 2, NODES, BOOTS_KEY, String(Date.now() - olderThanMs))) as string[];
}
