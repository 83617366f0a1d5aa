import type { Request, Response } from 'express';
import type { AppStore } from '../../common/src/apps.js';
import type { Logger } from '../../common/src/logger.js';
import { TokenError, type TokenVerifier } from './verifyToken.js';

/**
 * `GET /v1/session?token=`: lets a browser tell "token refused" from "network down" (a failed
 * WebSocket handshake shows no status to page scripts). Verified locally, like the handshake.
 */
export function sessionRoute(deps: { verify: TokenVerifier; apps: Pick<AppStore, 'get'>; logger: Logger; isAccepting: () => boolean }) {
  return async (req: Request, res: Response): Promise<void> => {
    res.set('Access-Control-Allow-Origin', '*');
    res.set('Cache-Control', 'no-store');
    try {
      const claims = await deps.verify(typeof req.query.token === 'string' ? req.query.token : '');
      const origin = req.headers.origin;
      const app = await deps.apps.get(claims.app);
      if (!app) throw new TokenError('TOKEN_INVALID', 'token names an unknown app');
      if (origin && !app.allowedOrigins.includes('*') && !app.allowedOrigins.includes(origin)) {
        res.status(403).json({ error: { code: 'ORIGIN_NOT_ALLOWED', message: `origin ${origin} is not allowed for app ${app._id}` } });
        return;
      }
      res.json({ app: claims.app, userId: claims.user, deviceId: claims.device, expiresAt: new Date(claims.exp * 1000).toISOString(), accepting: deps.isAccepting() });
    } catch (err) {
      // Not the token's fault (the app store failed): 503, which clients retry; a 401 makes the SDK give up for good.
      if (!(err instanceof TokenError)) {
        deps.logger.warn({ err: (err as Error).message }, 'session check failed');
        res.set('Retry-After', '2').status(503).json({ error: { code: 'UNAVAILABLE', message: 'cannot check the session now; retry later' } });
        return;
      }
      res.status(err.code === 'KEYS_UNAVAILABLE' ? 503 : 401).json({ error: { code: err.code, message: err.message } });
    }
  };
}

/** `/v1/admin/...` on the public port: the admin endpoints are on the node's admin listener. */
export function adminElsewhere(_req: Request, res: Response): void {
  res.status(404).json({
    error: { code: 'NOT_FOUND', message: "admin endpoints are served on the node's admin listener (PUSHER_ADMIN_HOST/PUSHER_ADMIN_PORT, its adminUrl in the node list), not on the public port" },
  });
}
