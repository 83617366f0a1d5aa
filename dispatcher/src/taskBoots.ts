import type { Redis } from 'ioredis';
import { BOOTS_KEY, parseBoots } from '../../store/nodeRegistry.js';
import { stateTtlSeconds } from '../../store/tasks.js';

/**
 * Which run (boot) of each pusher node a task was sent to:
 *
 *   push:task:<id>:boots   hash  nodeId -> boot id at fan-out
 *
 * A pusher runs its share of a task in memory and starts at the end of its
 * topic, so a node that restarts (same node id, new boot: `npm start` uses
 * node-8090 every time) never finishes a share it had; by node id alone it
 * still looks live and the task would look running for good. The dispatcher
 * records the boots when it fans a task out; the status API compares them.
 */
const bootsKey = (taskId: string) => `push:task:${taskId}:boots`;

/** At fan-out, next to the task's node list. Display data only: kept as long as a task's state can be. */
export async function recordTaskBoots(redis: Redis, fanout: Map<string, string[]>): Promise<void> {
  const sent = [...fanout].filter(([, nodes]) => nodes.length > 0);
  if (sent.length === 0) return;
  const boots = parseBoots(await redis.hgetall(BOOTS_KEY));
  const m = redis.multi();
  for (const [taskId, nodes] of sent) {
    const known = nodes.flatMap((n): [string, string][] => {
      const b = boots.get(n);
      return b ? [[n, b.boot]] : [];
    });
    if (known.length > 0) m.hset(bootsKey(taskId), Object.fromEntries(known)).expire(bootsKey(taskId), stateTtlSeconds(undefined));
  }
  await m.exec();
}

/** Reads the boots running now, once for many tasks. */
export async function currentBoots(redis: Redis): Promise<Map<string, string>> {
  return new Map([...parseBoots(await redis.hgetall(BOOTS_KEY))].map(([id, b]) => [id, b.boot]));
}

/** Nodes of the task that run another boot now than the one the task was sent to. */
export async function restartedTaskNodes(redis: Redis, taskId: string, current: Map<string, string>): Promise<string[]> {
  const sentTo = await redis.hgetall(bootsKey(taskId));
  return Object.entries(sentTo)
    .filter(([node, boot]) => current.get(node) !== boot)
    .map(([node]) => node);
}
