import type { Redis } from 'ioredis';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
import type { Logger } from '../../common/src/logger.js';
import { encodeRecord } from '../../schemas/registry.js';
import type { Connection } from './connection.js';

const epochKey = (c: Connection) => `push:epoch:${c.app}|${c.user}|${c.device}`;

/**
 * Presence events on push.presence, keyed app|user so one user's events stay
 * in order. Each connection of a device gets a new epoch (a Redis counter per
 * device); its OFFLINE carries the same epoch as its ONLINE, so a consumer
 * applies an event only when its epoch is not older than the last one it
 * applied for that device, and replays or duplicates change nothing.
 */
export function createPresence({ redis, publisher, topic, nodeId, logger }: { redis: Redis; publisher: BatchPublisher; topic: string; nodeId: string; logger: Logger }) {
  const publish = async (c: Connection, state: 'ONLINE' | 'OFFLINE', epoch: number) => {
    const rec = encodeRecord('Presence', { app: c.app, user: c.user, device: c.device, nodeId, connId: c.id, state, epoch, at: Date.now() });
    await publisher.publish(topic, [{ key: c.userKey, value: rec.value, headers: rec.headers }]);
  };
  const warn = (err: Error) => logger.warn({ err: err.message }, 'presence event not published');
  return {
    /** Publishes ONLINE; resolves with the connection's epoch (0 if it could not be published). */
    async online(c: Connection): Promise<number> {
      try {
        const epoch = await redis.incr(epochKey(c));
        void redis.expire(epochKey(c), 30 * 86_400).catch(() => undefined);
        await publish(c, 'ONLINE', epoch);
        return epoch;
      } catch (err) {
        warn(err as Error);
        return 0;
      }
    },
    offline(c: Connection, epoch: number): void {
      if (epoch > 0) void publish(c, 'OFFLINE', epoch).catch(warn);
    },
  };
}
