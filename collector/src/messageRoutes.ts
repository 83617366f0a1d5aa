import express, { Router } from 'express';
import type { AppStore } from '../../common/src/apps.js';
import { appOf, requireApp } from '../../common/src/httpAuth.js';
import { PushError } from '../../common/src/errors.js';
import { submitMessage, type SubmitDeps } from './submitMessage.js';
import { validateSubmission } from './validateMessage.js';
import type { RateLimiter } from './rateLimiter.js';
import { traceIdFromHeaders } from '../../common/src/traceRecords.js';

export function messageRoutes(deps: SubmitDeps & { apps: AppStore; maxBodyBytes: number; limiter: RateLimiter }): Router {
  const router = Router();
  router.post(
    '/v1/messages',
    requireApp(deps.apps),
    (req, _res, next) => {
      // Refuse non-JSON up front: express.json() would silently skip it.
      if (!req.is('application/json')) return next(new PushError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json', { status: 415 }));
      next();
    },
    express.json({ limit: deps.maxBodyBytes, strict: false }),
    async (req, res) => {
      const app = appOf(res);
      let sub;
      try {
        sub = validateSubmission(req.body, app.limits);
        // A body traceId wins; else W3C traceparent or X-Trace-Id; else the message id (submitMessage).
        sub.traceId ??= traceIdFromHeaders(req.headers);
      } catch (err) {
        deps.metrics.received.inc({ source: 'http', outcome: 'invalid' });
        throw err;
      }
      const waitMs = await deps.limiter.take(app, sub.to.kind === 'users' ? sub.to.users.length : 1);
      if (waitMs > 0) {
        deps.metrics.received.inc({ source: 'http', outcome: 'rate-limited' });
        res.set('Retry-After', String(Math.max(1, Math.ceil(waitMs / 1000))));
        throw new PushError('RATE_LIMITED', `app ${app._id} is over its ingestion rate; retry in ${waitMs} ms`, { status: 429, retriable: true, details: { retryAfterMs: waitMs } });
      }
      const result = await submitMessage(deps, app, sub);
      deps.metrics.received.inc({ source: 'http', outcome: result.duplicate ? 'duplicate' : result.status });
      res.status(202).json(result);
    },
  );
  return router;
}
