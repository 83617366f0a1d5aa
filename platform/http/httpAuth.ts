import { timingSafeEqual } from 'node:crypto';
import type { NextFunction, Request, Response } from 'express';
import type { App, AppStore } from '../../store/apps.js';
import { PushError, unauthorized } from '../errors.js';
import { createOperatorAuthThrottle, DEFAULT_OPERATOR_AUTH_LIMITS, type OperatorAuthLimits, type OperatorAuthThrottle } from './operatorAuthThrottle.js';

function bearer(req: Request): string | undefined {
  const h = req.headers.authorization;
  if (!h) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(h);
  return m?.[1];
}

/** API_KEY_AUTH_MAX_FAILURES / API_KEY_AUTH_WINDOW_SECONDS defaults. */
export const DEFAULT_API_KEY_AUTH_LIMITS: OperatorAuthLimits = { maxFailures: 100, windowMs: 60_000 };

/**
 * Failed API-key authentications per source address. Every unknown key costs a
 * store read, so guessing keys (or a flood of bad ones) from one address is
 * refused with 429 once it reaches the limit, before any lookup. Shared by every
 * route of the process that takes an API key (the collector's fast path too).
 */
export function apiKeyGate(limits: OperatorAuthLimits = DEFAULT_API_KEY_AUTH_LIMITS) {
  const throttle = throttleFor(limits, 'api-key');
  return {
    /** A 429 to answer before looking the key up, or undefined. */
    refusal(address: string | undefined): PushError | undefined {
      const waitMs = throttle.blockedFor(address ?? 'unknown');
      if (waitMs === 0) return undefined;
      const seconds = Math.ceil(waitMs / 1000);
      return new PushError('RATE_LIMITED', `too many failed API key authentications from this address; retry in ${seconds} s`, {
        status: 429,
        details: { retryAfterMs: seconds * 1000 },
      });
    },
    failed: (address: string | undefined) => throttle.failed(address ?? 'unknown'),
  };
}

/** Authenticates a business system by its app API key; the app lands in `res.locals.app`. */
export function requireApp(apps: AppStore, limits: OperatorAuthLimits = DEFAULT_API_KEY_AUTH_LIMITS) {
  const gate = apiKeyGate(limits);
  return async (req: Request, res: Response, next: NextFunction) => {
    const address = req.socket.remoteAddress;
    const refused = gate.refusal(address);
    if (refused) {
      res.set('Retry-After', String(Math.ceil((refused.details as { retryAfterMs: number }).retryAfterMs / 1000)));
      return next(refused);
    }
    const key = bearer(req);
    if (!key) {
      gate.failed(address);
      return next(unauthorized('missing Authorization: Bearer <api key>'));
    }
    try {
      const app = await apps.findByApiKey(key);
      if (!app) {
        gate.failed(address);
        return next(unauthorized('unknown API key'));
      }
      res.locals.app = app;
      next();
    } catch (err) {
      next(new PushError('UNAVAILABLE', 'cannot check the API key now', { status: 503, retriable: true, cause: err }));
    }
  };
}

export const appOf = (res: Response): App => res.locals.app as App;

/** One throttle per process and limits, shared by every operator route of the service. */
const throttles = new Map<string, OperatorAuthThrottle>();
const throttleFor = (limits: OperatorAuthLimits, kind = 'operator') => {
  const key = `${kind}:${limits.maxFailures}/${limits.windowMs}`;
  let t = throttles.get(key);
  if (!t) throttles.set(key, (t = createOperatorAuthThrottle(limits)));
  return t;
};

/**
 * Guards admin routes with the operator key (constant-time comparison). A
 * source address with too many failures (OPERATOR_AUTH_MAX_FAILURES within
 * OPERATOR_AUTH_WINDOW_SECONDS) is answered 429 RATE_LIMITED with Retry-After
 * until its window ends, even with the right key, so the key cannot be guessed
 * at the speed of the network. The address is the TCP peer's: a forwarded-for
 * header is the client's to invent.
 */
export function requireOperator(operatorKey: string, limits: OperatorAuthLimits = DEFAULT_OPERATOR_AUTH_LIMITS) {
  const expected = Buffer.from(operatorKey);
  const throttle = throttleFor(limits);
  const refuse = (res: Response, next: NextFunction, waitMs: number) => {
    const seconds = Math.ceil(waitMs / 1000);
    res.set('Retry-After', String(seconds));
    next(new PushError('RATE_LIMITED', `too many failed operator authentications from this address; retry in ${seconds} s`, { status: 429 }));
  };
  return (req: Request, res: Response, next: NextFunction) => {
    const address = req.socket.remoteAddress ?? 'unknown';
    const blocked = throttle.blockedFor(address);
    if (blocked > 0) return refuse(res, next, blocked);
    const given = Buffer.from(bearer(req) ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throttle.failed(address);
      return next(unauthorized('operator key required'));
    }
    throttle.succeeded(address);
    next();
  };
}
