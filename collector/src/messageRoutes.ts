import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import { Router } from 'express';
import type { App, AppStore } from '../../store/apps.js';
import type { Logger } from '../../platform/logger.js';
import { apiKeyGate } from '../../platform/http/httpAuth.js';
import type { OperatorAuthLimits } from '../../platform/http/operatorAuthThrottle.js';
import { PushError, unauthorized } from '../../platform/errors.js';
import { submitMessage, type SubmitDeps, type SubmitResult } from './submitMessage.js';
import { validateSubmission } from './validateMessage.js';
import type { RateLimiter } from './rateLimiter.js';
import type { ApiKeyLookup } from './apiKeyLookup.js';
import { traceIdFromHeaders } from '../../store/traceRecords.js';
import { readJsonBody } from './readJsonBody.js';

export type MessageRouteDeps = SubmitDeps & {
  apps: AppStore;
  apiKeys: ApiKeyLookup;
  maxBodyBytes: number;
  limiter: RateLimiter;
  logger: Logger;
  /** Failed API-key authentications tolerated per source address (API_KEY_AUTH_*). */
  apiKeyAuth?: OperatorAuthLimits;
};

const PATH = '/v1/messages';

/**
 * Validation, rate limit and submission of one HTTP body.
 */
async function submitBody(deps: MessageRouteDeps, app: App, body: unknown, headers: IncomingHttpHeaders): Promise<SubmitResult> {
  let sub;
  try {
    sub = validateSubmission(body, app.limits);
    // A body traceId wins; else W3C traceparent or X-Trace-Id; else the message id (submitMessage).
    sub.traceId ??= traceIdFromHeaders(headers);
  } catch (err) {
    deps.metrics.receivedHttp('invalid').inc();
    throw err;
  }
  const waitMs = await deps.limiter.take(app, sub.to.kind === 'users' ? sub.to.users.length : 1);
  if (waitMs > 0) {
    deps.metrics.receivedHttp('rate-limited').inc();
    throw new PushError('RATE_LIMITED', `app ${app._id} is over its ingestion rate; retry in ${waitMs} ms`, {
      status: 429,
      retriable: true,
      details: { retryAfterMs: waitMs },
    });
  }
  const result = await submitMessage(deps, app, sub);
  deps.metrics.receivedHttp(result.duplicate ? 'duplicate' : result.status).inc();
  return result;
}

const retryAfterOf = (err: PushError): string | undefined => {
  const ms = (err.details as { retryAfterMs?: unknown } | undefined)?.retryAfterMs;
  if (err.code === 'RATE_LIMITED' && typeof ms === 'number') return String(Math.max(1, Math.ceil(ms / 1000)));
  return err.status === 503 || err.status === 429 || err.code === 'IDEMPOTENCY_IN_PROGRESS' ? '1' : undefined;
};

/**
 * The one `POST /v1/messages` handler. It runs straight on the HTTP server,
 * ahead of express (express's routing, body parsing and response helpers cost
 * more CPU per request than the rest of a submission), and reads every body
 * itself: `Content-Encoding` gzip, deflate, br or identity, UTF-8 or UTF-16,
 * the size limit on the decoded body (readJsonBody.ts). `handler` answers one
 * request; `listener` takes the requests for this path and hands the others
 * to `fallback` (the express app, which mounts the same `handler` for the
 * spellings of the path the listener leaves to it, and answers 405 to other
 * methods).
 */
export function createMessageHandler(deps: MessageRouteDeps) {
  const answer = (res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) => {
    if (res.headersSent || res.destroyed) return;
    const text = JSON.stringify(body);
    res.writeHead(status, { ...headers, 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const fail = (req: IncomingMessage, res: ServerResponse, err: unknown) => {
    let pe: PushError;
    if (err instanceof PushError) pe = err;
    else {
      pe = new PushError('INTERNAL', 'internal error', { status: 500, cause: err });
      deps.logger.error({ err, method: req.method, path: PATH }, 'request failed');
    }
    const retryAfter = retryAfterOf(pe);
    answer(res, pe.status, pe.toJSON(), retryAfter ? { 'retry-after': retryAfter } : {});
  };

  const gate = apiKeyGate(deps.apiKeyAuth);
  let lookupFailureLoggedAt = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const address = req.socket.remoteAddress;
    const refused = gate.refusal(address);
    if (refused) throw refused;
    const key = bearer(req.headers.authorization);
    if (!key) {
      gate.failed(address);
      throw unauthorized('missing Authorization: Bearer <api key>');
    }
    let app: App | undefined;
    try {
      app = await deps.apiKeys(key);
    } catch (err) {
      // The cause is the store's, not the client's: said in the log (at most once a second), not in the answer.
      if (Date.now() - lookupFailureLoggedAt > 1000) {
        lookupFailureLoggedAt = Date.now();
        deps.logger.warn({ err: (err as Error).message }, 'API key lookup failed; answered 503');
      }
      throw new PushError('UNAVAILABLE', 'cannot check the API key now', { status: 503, retriable: true, cause: err });
    }
    if (!app) {
      gate.failed(address);
      throw unauthorized('unknown API key');
    }
    if (!hasBody(req) || mediaType(req.headers['content-type']) !== 'application/json') {
      throw new PushError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json', { status: 415 });
    }
    const body = await readJsonBody(req, deps.maxBodyBytes);
    answer(res, 202, await submitBody(deps, app, body, req.headers));
  };

  const handler = (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch((err: unknown) => fail(req, res, err));
  };
  const listener = (fallback: (req: IncomingMessage, res: ServerResponse) => void) => (req: IncomingMessage, res: ServerResponse) => {
    if (req.method === 'POST' && pathOf(req.url) === PATH) handler(req, res);
    else fallback(req, res);
  };
  return { handler, listener };
}

/** The route express would mount: the same handler, for a path spelled another way (case, trailing slash). */
export function messageRoutes(handler: (req: IncomingMessage, res: ServerResponse) => void): Router {
  return Router().post(PATH, handler);
}

/** A request target without its query. */
const pathOf = (url: string | undefined) => {
  const q = url?.indexOf('?') ?? -1;
  return q < 0 ? url : url!.slice(0, q);
};

function bearer(h: string | undefined): string | undefined {
  if (!h) return undefined;
  return /^Bearer\s+(\S+)$/i.exec(h)?.[1];
}

/** What type-is calls a request with a body: one that says how long it is or that it is chunked. */
const hasBody = (req: IncomingMessage) =>
  req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number.parseInt(req.headers['content-length'] ?? '', 10));

/** The media type of a Content-Type, lower-cased, without parameters. */
const mediaType = (contentType: string | undefined) => contentType?.split(';', 1)[0]!.trim().toLowerCase();
