import express, { Router, type RequestHandler, type Response } from 'express';
import type { Redis } from 'ioredis';
import { invalid } from './errors.js';
import { ID_PATTERN } from '../../protocol/tokens.js';

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

/**
 * `POST /v1/users/:userId/kick` with `{ deviceId?, reason? }`. `appOf` says
 * which app the caller acts for: its own (API key) or the one in the body
 * (`app`, operator key).
 */
export function kickRoutes({
  redis,
  auth,
  appOf,
}: {
  redis: Redis;
  auth: RequestHandler;
  appOf: (res: Response, body: Record<string, unknown>) => string;
}): Router {
  const router = Router();
  router.post('/v1/users/:userId/kick', auth, express.json({ limit: '4kb' }), async (req, res) => {
    // express.json takes arrays too; `[]` is not "no options" but a wrong body.
    if (Array.isArray(req.body)) throw invalid('body must be a JSON object');
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;
    const user = String(req.params.userId);
    if (!ID_PATTERN.test(user)) throw invalid('userId is not a valid user id', { field: 'userId' });
    if (body.app !== undefined && (typeof body.app !== 'string' || body.app === '')) throw invalid('app must be a non-empty string', { field: 'app' });
    if (body.deviceId !== undefined && (typeof body.deviceId !== 'string' || !ID_PATTERN.test(body.deviceId))) {
      throw invalid('deviceId must be a device id', { field: 'deviceId' });
    }
    // Bytes, not UTF-16 units: 62 'é' are 62 characters but 124 bytes.
    if (body.reason !== undefined && (typeof body.reason !== 'string' || Buffer.byteLength(body.reason) > MAX_KICK_REASON_BYTES)) {
      throw invalid(`reason must be a string of at most ${MAX_KICK_REASON_BYTES} bytes (UTF-8)`, { field: 'reason' });
    }
    const app = appOf(res, body);
    if (!app) throw invalid('app is required', { field: 'app' });
    await publishKick(redis, {
      app,
      user,
      ...(typeof body.deviceId === 'string' ? { device: body.deviceId } : {}),
      reason: typeof body.reason === 'string' ? body.reason : 'kicked',
    });
    res.status(202).json({ status: 'requested', app, user, deviceId: body.deviceId ?? null });
  });
  return router;
}
