import type { Request, Response } from 'express';
import { admit, type AdmitDeps } from './handshake.js';

/**
 * `GET /v1/session?token=`: lets a browser tell "token refused" from "network down" (a failed
 * WebSocket handshake shows no status to page scripts). The same checks as the handshake (admit).
 */
export function sessionRoute(deps: AdmitDeps & { isAccepting: () => boolean }) {
  return async (req: Request, res: Response): Promise<void> => {
    res.set('Access-Control-Allow-Origin', '*');
    res.set('Cache-Control', 'no-store');
    const a = await admit(deps, typeof req.query.token === 'string' ? req.query.token : '', req.headers.origin);
    if (!a.ok) {
      if (a.retryAfterSeconds !== undefined) res.set('Retry-After', String(a.retryAfterSeconds));
      res.status(a.status).json({ error: { code: a.code, message: a.message } });
      return;
    }
    const { claims } = a;
    res.json({
      app: claims.app,
      userId: claims.user,
      deviceId: claims.device,
      expiresAt: new Date(claims.exp * 1000).toISOString(),
      accepting: deps.isAccepting(),
    });
  };
}

/** `/v1/admin/...` on the public port: the admin endpoints are on the node's admin listener. */
export function adminElsewhere(_req: Request, res: Response): void {
  res.status(404).json({
    error: {
      code: 'NOT_FOUND',
      message:
        "admin endpoints are served on the node's admin listener (PUSHER_ADMIN_HOST/PUSHER_ADMIN_PORT, its adminUrl in the node list), not on the public port",
    },
  });
}
