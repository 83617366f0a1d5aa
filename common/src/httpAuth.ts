import { timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { App, AppStore } from './apps.js';
import { PushError, unauthorized } from './errors.js';

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m?.[1];
}

/** Authenticates a business system by its app API key; the app lands in `res.locals.app`. */
export function requireApp(apps: AppStore) {
  return async (req: Request, res: Response, next: NextFunction) => {
    const key = bearer(req);
    if (!key) return next(unauthorized('missing Authorization: Bearer <api key>'));
    try {
      const app = await apps.findByApiKey(key);
      if (!app) return next(unauthorized('unknown API key'));
      res.locals.app = app;
      next();
    } catch (err) {
      next(new PushError('UNAVAILABLE', 'cannot check the API key now', { status: 503, retriable: true, cause: err }));
    }
  };
}

export const appOf = (res: Response): App => res.locals.app as App;

/** Guards admin routes with the operator key (constant-time comparison). */
export function requireOperator(operatorKey: string) {
  const expected = Buffer.from(operatorKey);
  return (req: Request, _res: Response, next: NextFunction) => {
    const given = Buffer.from(bearer(req) ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return next(unauthorized('operator key required'));
    }
    next();
  };
}
