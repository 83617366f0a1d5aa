import type { Redis } from 'ioredis';

/**
 * Kicks travel to every pusher on one Redis channel; the node holding the
 * connections sends a `kick` frame and closes them with 4009 (the SDK does
 * not reconnect after it).
 */
export const KICK_CHANNEL = 'push:kicks';

/**
 * The kick channel of this stack. ioredis's `keyPrefix` applies to keys, not
 * to channel names, so the prefix is put in front here: two stacks sharing one
 * Redis (each with its own REDIS_KEY_PREFIX) must not kick each other's users.
 * With no prefix the name is the same as before.
 */
export const kickChannel = (redis: Redis): string => `${redis.options.keyPrefix ?? ''}${KICK_CHANNEL}`;

/**
 * Longest kick reason accepted, in UTF-8 bytes (the `kick` frame carries it in
 * full; the close frame carries at most 123 bytes of it, cut on a character boundary).
 */
export const MAX_KICK_REASON_BYTES = 200;

export interface Kick {
  app: string;
  user: string;
  /** Only this device; all devices of the user when absent. */
  device?: string;
  /** Spares this connection (the new one, in `single` device mode). */
  exceptConn?: string;
  reason: string;
}

export async function publishKick(redis: Redis, kick: Kick): Promise<void> {
  await redis.publish(kickChannel(redis), JSON.stringify(kick));
}

const optionalString = (v: unknown) => v === undefined || typeof v === 'string';

/**
 * Reads a kick from the channel. Anything that can publish to Redis can put
 * text there, so every field is checked and a bad message is ignored (never thrown).
 */
export function parseKick(text: string): Kick | undefined {
  try {
    const k = JSON.parse(text) as Record<string, unknown> | null;
    if (typeof k !== 'object' || k === null) return undefined;
    if (typeof k.app !== 'string' || typeof k.user !== 'string' || typeof k.reason !== 'string') return undefined;
    if (!optionalString(k.device) || !optionalString(k.exceptConn)) return undefined;
    return k as unknown as Kick;
  } catch {
    return undefined;
  }
}
