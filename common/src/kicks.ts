import express, { Router, type RequestHandler, type Response } from 'express';
import type { Redis } from 'ioredis';
import { invalid } from './errors.js';
import { ID_PATTERN } from './tokens.js';

/**
 * Kicks travel to every pusher on one Redis channel; the node holding the
 * connections sends a `kick` frame and closes them with 4009 (the SDK does
 * not reconnect after it).
 */
export const KICK_CHANNEL = 'push:kicks';

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
  await redis.publish(KICK_CHANNEL, JSON.stringify(kick));
}

export function parseKick(text: string): Kick | undefined {
  try {
    const k = JSON.parse(text) as Kick;
    return typeof k.app === 'string' && typeof k.user === 'string' && typeof k.reason === 'string' ? k : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `POST /v1/users/:userId/kick` with `{ deviceId?, reason? }`. `appOf` says
 * which app the caller acts for: its own (API key) or the one in the body
 * (`app`, operator key).
 */
export function kickRoutes({ redis, auth, appOf }: { redis: Redis; auth: RequestHandler; appOf: (res: Response, body: Record<string, unknown>) => string }): Router {
  const router = Router();
  router.post('/v1/users/:userId/kick', auth, express.json({ limit: '4kb' }), async (req, res) => {
    const body = (typeof req.body === 'object' && req.body !== null ? req.body : {}) as Record<string, unknown>;
    const user = String(req.params.userId);
    if (!ID_PATTERN.test(user)) throw invalid('userId is not a valid user id', { field: 'userId' });
    if (body.deviceId !== undefined && (typeof body.deviceId !== 'string' || !ID_PATTERN.test(body.deviceId))) {
      throw invalid('deviceId must be a device id', { field: 'deviceId' });
    }
    if (body.reason !== undefined && (typeof body.reason !== 'string' || body.reason.length > 200)) {
      throw invalid('reason must be a string of at most 200 characters', { field: 'reason' });
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
