import http from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type NextFunction, type Request, type Response } from 'express';
import type { Registry } from 'prom-client';
import type { Logger } from '../logger.js';
import { PushError } from '../errors.js';
import { requestErrorOf } from './requestErrors.js';
import { allowedMethods } from './allowedMethods.js';
import { answerClientError } from './answerClientError.js';
import { createCachedReadiness, type DependencyCheck } from '../dependencyChecks.js';

export interface HttpServiceOptions {
  name: string;
  host: string;
  port: number;
  logger: Logger;
  registry: Registry;
  checks: DependencyCheck[];
  /** Extra readiness condition owned by the service (e.g. "draining"). */
  isAccepting?: () => boolean;
}

export interface HttpService {
  app: Express;
  server: http.Server;
  listen(): Promise<{ host: string; port: number }>;
  close(): Promise<void>;
}

/**
 * An express app with the endpoints every service answers (`/healthz`,
 * `/readyz`, `/metrics`). Routes added by the caller come before the JSON
 * 404 and error handlers installed by `listen()`.
 */
export function createHttpService(opts: HttpServiceOptions): HttpService {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok', service: opts.name });
  });
  // Answered from dependency state checked in the background: a probe never waits on
  // a dependency or queues behind the service's work (a slow /readyz reads as "down").
  const readiness = createCachedReadiness(opts.checks);
  app.get('/readyz', (_req, res) => {
    const report = readiness.report();
    const accepting = opts.isAccepting?.() ?? true;
    const ready = report.ready && accepting;
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not-ready', service: opts.name, accepting, ...report });
  });
  app.get('/metrics', async (_req, res) => {
    res.set('Content-Type', opts.registry.contentType);
    res.send(await opts.registry.metrics());
  });

  const server = http.createServer(app);
  server.keepAliveTimeout = 65_000;
  server.on('clientError', answerClientError);

  return {
    app,
    server,
    listen() {
      app.use((req, res) => {
        // A path the service knows, asked with another method: 405 with Allow, not a misleading 404.
        const allow = allowedMethods((app as unknown as { router?: Parameters<typeof allowedMethods>[0] }).router, req.path);
        if (allow.length > 0) {
          res.set('Allow', allow.join(', '));
          res.status(405).json({ error: { code: 'METHOD_NOT_ALLOWED', message: `${req.method} is not allowed on ${req.path}; use ${allow.join(', ')}` } });
          return;
        }
        res.status(404).json({ error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${req.path}` } });
      });
      app.use(errorHandler(opts.logger));
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(opts.port, opts.host, () => {
          server.off('error', reject);
          const addr = server.address() as AddressInfo;
          resolve({ host: addr.address, port: addr.port });
        });
      });
    },
    close() {
      readiness.close();
      return new Promise((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
    },
  };
}

/** Maps thrown errors, including body-parser's, to the JSON error shape. */
function errorHandler(logger: Logger) {
  return (err: unknown, req: Request, res: Response, _next: NextFunction) => {
    // Too late for an error answer: end the response rather than throw from here.
    if (res.headersSent) {
      logger.error({ err, method: req.method, path: req.path }, 'request failed after its answer started');
      res.destroy();
      return;
    }
    let pe = requestErrorOf(err);
    if (!pe) {
      pe = new PushError('INTERNAL', 'internal error', { status: 500, cause: err });
      logger.error({ err, method: req.method, path: req.path }, 'request failed');
    }
    if (pe.status === 503 || pe.status === 429 || pe.code === 'IDEMPOTENCY_IN_PROGRESS') res.set('Retry-After', res.get('Retry-After') ?? '1');
    res.status(pe.status).json(pe.toJSON());
  };
}
