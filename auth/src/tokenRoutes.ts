import express, { Router } from 'express';
import { SignJWT } from 'jose';
import type { Redis } from 'ioredis';
import type { AppStore } from '../../store/apps.js';
import { appOf, requireApp, requireOperator } from '../../platform/http/httpAuth.js';
import { invalid } from '../../platform/errors.js';
import { ID_PATTERN, JWKS_PATH, TOKEN_AUDIENCE, TOKEN_ISSUER } from '../../protocol/tokens.js';

const MAX_TOKEN_GROUPS = 100;
const GROUP_GRANT_PATTERN = /^[A-Za-z0-9._:-]{1,128}\*?$|^\*$/;
import { orderNodesFor } from './orderNodes.js';
import type { SigningKeys } from './signingKeys.js';

export interface TokenRoutesDeps {
  apps: AppStore;
  keys: SigningKeys;
  redis: Redis;
  operatorKey: string;
  /** Failed operator authentications tolerated per source address (platform/http/operatorAuthThrottle.ts). */
  operatorAuth?: { maxFailures: number; windowMs: number };
  /** Failed API-key authentications tolerated per source address (API_KEY_AUTH_*). */
  apiKeyAuth?: { maxFailures: number; windowMs: number };
  tokenTtlSeconds: number;
  /** Used when no pusher has registered itself in Redis (e.g. a static deployment). */
  staticNodes: string[];
}

function readId(body: Record<string, unknown>, field: string): string {
  const v = body[field];
  if (typeof v !== 'string' || !ID_PATTERN.test(v)) {
    throw invalid(`${field} must be a string of 1-128 characters without whitespace, control characters, lone surrogates or "|", not starting with "#"`, {
      field,
    });
  }
  return v;
}

export function tokenRoutes(deps: TokenRoutesDeps): Router {
  const router = Router();

  router.get(JWKS_PATH, async (_req, res) => {
    res.set('Cache-Control', 'max-age=60');
    res.json(await deps.keys.jwks());
  });

  router.post('/v1/tokens', requireApp(deps.apps, deps.apiKeyAuth), express.json({ limit: '4kb' }), async (req, res) => {
    const body = (req.body ?? {}) as Record<string, unknown>;
    if (typeof body !== 'object' || Array.isArray(body)) throw invalid('body must be a JSON object');
    const userId = readId(body, 'userId');
    const deviceId = readId(body, 'deviceId');
    let ttl = deps.tokenTtlSeconds;
    if (body.ttlSeconds !== undefined) {
      if (!Number.isInteger(body.ttlSeconds) || (body.ttlSeconds as number) < 10 || (body.ttlSeconds as number) > deps.tokenTtlSeconds) {
        throw invalid(`ttlSeconds must be an integer from 10 to ${deps.tokenTtlSeconds}`, { field: 'ttlSeconds' });
      }
      ttl = body.ttlSeconds as number;
    }
    let groups: string[] = [];
    if (body.groups !== undefined) {
      const g = body.groups;
      if (!Array.isArray(g) || g.length > MAX_TOKEN_GROUPS || !g.every((x) => typeof x === 'string' && GROUP_GRANT_PATTERN.test(x))) {
        throw invalid(`groups must be an array of at most ${MAX_TOKEN_GROUPS} group names (a trailing * grants a prefix)`, { field: 'groups' });
      }
      groups = g as string[];
    }
    const app = appOf(res);
    const { kid, key } = await deps.keys.current();
    const exp = Math.floor(Date.now() / 1000) + ttl;
    const token = await new SignJWT({ app: app._id, dev: deviceId, ...(groups.length > 0 ? { grp: groups } : {}) })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'JWT' })
      .setSubject(userId)
      .setIssuer(TOKEN_ISSUER)
      .setAudience(TOKEN_AUDIENCE)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(key);
    const nodes = await orderNodesFor(deps.redis, app._id, userId);
    res.json({ token, expiresAt: new Date(exp * 1000).toISOString(), nodes: nodes.length > 0 ? nodes : deps.staticNodes });
  });

  router.post('/v1/admin/keys/rotate', requireOperator(deps.operatorKey, deps.operatorAuth), async (_req, res) => {
    res.json({ kid: await deps.keys.rotate() });
  });

  return router;
}
