import express, { Router, type RequestHandler, type Response } from 'express';
import type { Redis } from 'ioredis';
import { invalid } from '../platform/errors.js';
import { ID_PATTERN } from '../protocol/tokens.js';
import { MAX_KICK_REASON_BYTES, publishKick } from '../store/kicks.js';

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
