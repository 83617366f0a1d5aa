import { Router, type RequestHandler } from 'express';
import type { Redis } from 'ioredis';
import { appOf } from '../../platform/http/httpAuth.js';
import { invalid } from '../../platform/errors.js';
import { lookupRoutes } from '../../store/routeTable.js';
import { liveNodeIds } from '../../store/nodeRegistry.js';
import { ID_PATTERN } from '../../protocol/tokens.js';

/** `GET /v1/users/:userId/presence`: the user's live devices and the nodes holding them, from the Redis routes. */
export function presenceRoutes({ redis, auth }: { redis: Redis; auth: RequestHandler }): Router {
  const router = Router();
  router.get('/v1/users/:userId/presence', auth, async (req, res) => {
    const user = String(req.params.userId);
    if (!ID_PATTERN.test(user)) throw invalid('userId is not a valid user id', { field: 'userId' });
    const app = appOf(res)._id;
    const [[routes], live] = await Promise.all([lookupRoutes(redis, [{ app, user }]), liveNodeIds(redis)]);
    const liveSet = new Set(live);
    const devices = (routes ?? [])
      .filter((r) => liveSet.has(r.nodeId))
      .map((r) => ({ deviceId: r.device, nodeId: r.nodeId, connId: r.connId, expiresAt: new Date(r.expiresAt).toISOString() }));
    res.json({ userId: user, online: devices.length > 0, devices });
  });
  return router;
}
