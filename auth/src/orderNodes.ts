import type { Redis } from 'ioredis';
import { lastNodeKey, liveNodes } from '../../store/nodeRegistry.js';

/**
 * Live, non-draining pushers for a user: the node the user last connected to
 * first (a brief disconnect resumes cheaply there), then the least loaded.
 */
export async function orderNodesFor(redis: Redis, app: string, user: string): Promise<string[]> {
  const [nodes, last] = await Promise.all([liveNodes(redis), redis.get(lastNodeKey(app, user))]);
  return nodes
    .filter((n) => !n.draining)
    .sort((a, b) => Number(b.id === last) - Number(a.id === last) || a.connections - b.connections || a.id.localeCompare(b.id))
    .map((n) => n.url);
}
