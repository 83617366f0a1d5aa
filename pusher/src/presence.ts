import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import type { Logger } from '../../platform/logger.js';
import { encodeRecord } from '../../schemas/registry.js';
import type { Connection } from './connection.js';

/** The per-device epoch counter in Redis (incremented by connectWrites.ts, with the route). */
export const epochKey = (c: Connection) => `push:epoch:${c.app}|${c.user}|${c.device}`;
/** How long a device's epoch counter outlives its last connection. */
export const EPOCH_TTL_SECONDS = 30 * 86_400;

/**
 * Presence events on push.presence, keyed app|user so one user's events stay
 * in order. Each connection of a device gets a new epoch (a Redis counter per
 * device, `presenceEpoch`); its OFFLINE carries the same epoch as its ONLINE,
 * so a consumer applies an event only when its epoch is not older than the
 * last one it applied for that device, and replays or duplicates change
 * nothing. ONLINE and OFFLINE of a connection go through the same batch
 * publisher, which keeps their order.
 */
export function createPresence({ publisher, topic, nodeId, logger }: { publisher: BatchPublisher; topic: string; nodeId: string; logger: Logger }) {
  const record = (c: Connection, state: 'ONLINE' | 'OFFLINE', at: number) => {
    const rec = encodeRecord('Presence', { app: c.app, user: c.user, device: c.device, nodeId, connId: c.id, state, epoch: c.presenceEpoch, at });
    return { key: c.userKey, value: rec.value, headers: rec.headers };
  };
  const warn = (err: Error) => logger.warn({ err: err.message }, 'presence event not published');
  return {
    /**
     * Publishes ONLINE for connections that got their epoch, in one publish;
     * one that closed while its epoch was being written (its close found no
     * epoch, so published nothing) gets its OFFLINE right after.
     */
    online(conns: Connection[]): void {
      const at = Date.now();
      const records = [];
      for (const c of conns) {
        if (c.presenceEpoch === 0) continue;
        records.push(record(c, 'ONLINE', at));
        if (c.closed) records.push(record(c, 'OFFLINE', at));
      }
      if (records.length > 0) publisher.publish(topic, records).catch(warn);
    },
    /** Publishes OFFLINE for a connection whose ONLINE went out (epoch known). */
    offline(c: Connection): void {
      if (c.presenceEpoch > 0) publisher.publish(topic, [record(c, 'OFFLINE', Date.now())]).catch(warn);
    },
  };
}
