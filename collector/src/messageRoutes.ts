import type { IncomingHttpHeaders, IncomingMessage, ServerResponse } from 'node:http';
import express, { Router } from 'express';
import type { App, AppStore } from '../../common/src/apps.js';
import type { Logger } from '../../common/src/logger.js';
import { apiKeyGate, appOf, requireApp } from '../../common/src/httpAuth.js';
import type { OperatorAuthLimits } from '../../common/src/operatorAuthThrottle.js';
import { PushError, unauthorized } from '../../common/src/errors.js';
import { submitMessage, type SubmitDeps, type SubmitResult } from './submitMessage.js';
import { validateSubmission } from './validateMessage.js';
import type { RateLimiter } from './rateLimiter.js';
import type { ApiKeyLookup } from './apiKeyLookup.js';
import { traceIdFromHeaders } from '../../common/src/traceRecords.js';

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
 * Validation, rate limit and submission of one HTTP body, whichever way it
 * was read (the listener below or the express route).
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
    throw new PushError('RATE_LIMITED', `app ${app._id} is over its ingestion rate; retry in ${waitMs} ms`, { status: 429, retriable: true, details: { retryAfterMs: waitMs } });
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

/** The express route: the same checks in the same order, for what the listener leaves to express. */
export function messageRoutes(deps: MessageRouteDeps): Router {
  const router = Router();
  router.post(
    PATH,
    requireApp(deps.apps, deps.apiKeyAuth),
    (req, _res, next) => {
      // Refuse non-JSON up front: express.json() would silently skip it.
      if (!req.is('application/json')) return next(new PushError('UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json', { status: 415 }));
      next();
    },
    express.json({ limit: deps.maxBodyBytes, strict: false }),
    async (req, res) => {
      try {
        res.status(202).json(await submitBody(deps, appOf(res), req.body, req.headers));
      } catch (err) {
        const retryAfter = err instanceof PushError ? retryAfterOf(err) : undefined;
        if (retryAfter) res.set('Retry-After', retryAfter);
        throw err;
      }
    },
  );
  return router;
}

/**
 * `POST /v1/messages` straight on the HTTP server, ahead of express: express's
 * routing, body parsing and response helpers cost more CPU per request than
 * the rest of a submission. It answers exactly what the express route answers
 * (same checks, order, codes and messages) for the common case, a plain
 * `application/json` body (no `Content-Encoding`, UTF-8); anything else
 * (compressed bodies, other charsets, other paths) goes to `fallback`, the
 * express app, whose route above handles it the long way.
 */
export function createMessageListener(deps: MessageRouteDeps, fallback: (req: IncomingMessage, res: ServerResponse) => void) {
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

  return (req: IncomingMessage, res: ServerResponse) => {
    if (req.method !== 'POST' || req.url !== PATH || !plainUtf8(req.headers)) return fallback(req, res);
    handle(req, res).catch((err: unknown) => fail(req, res, err));
  };
}

function bearer(h: string | undefined): string | undefined {
  if (!h) return undefined;
  return /^Bearer\s+(\S+)$/i.exec(h)?.[1];
}

/** What type-is calls a request with a body: one that says how long it is or that it is chunked. */
const hasBody = (req: IncomingMessage) => req.headers['transfer-encoding'] !== undefined || !Number.isNaN(Number.parseInt(req.headers['content-length'] ?? '', 10));

/** The media type of a Content-Type, lower-cased, without parameters. */
const mediaType = (contentType: string | undefined) => contentType?.split(';', 1)[0]!.trim().toLowerCase();

/** No content coding and no charset other than UTF-8: the bodies this listener reads itself. */
function plainUtf8(headers: IncomingHttpHeaders): boolean {
  const coding = headers['content-encoding'];
  if (coding !== undefined && coding.toLowerCase() !== 'identity') return false;
  const type = headers['content-type'];
  if (type === undefined || !type.includes(';')) return true;
  const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(type)?.[1]?.toLowerCase();
  return charset === undefined || charset === 'utf-8' || charset === 'utf8';
}

const tooLarge = () => new PushError('PAYLOAD_TOO_LARGE', 'request body is too large', { status: 413 });

/**
 * Reads and parses a JSON body of at most `limit` bytes; an empty body is
 * `{}` (as express.json has it). An oversized body is read off to its end
 * before the 413, so the client sees the answer rather than a reset.
 */
function readJsonBody(req: IncomingMessage, limit: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    let over = declared > limit;
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      if (over) return;
      size += chunk.length;
      if (size > limit) {
        over = true;
        chunks.length = 0;
      } else chunks.push(chunk);
    });
    req.on('end', () => {
      if (over) return reject(tooLarge());
      let text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)).toString('utf8');
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
      if (text.length === 0) return resolve({});
      try {
        resolve(JSON.parse(text));
      } catch {
        reject(new PushError('INVALID_JSON', 'request body is not valid JSON', { status: 400 }));
      }
    });
    req.on('error', (err) => reject(new PushError('INVALID_REQUEST', `request body could not be read: ${err.message}`, { status: 400 })));
  });
}
