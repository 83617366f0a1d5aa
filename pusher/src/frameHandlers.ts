import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import type { TraceWriter } from '../../store/traceRecords.js';
import { putGroupNodes, removeGroupNodes } from '../../store/routeTable.js';
import { CLOSE, FRAME_ERROR } from '../../protocol/codes.js';
import { authedFrame, errorFrame, unsubscribedFrame } from '../../protocol/frames.js';
import { newId } from '../../protocol/ids.js';
import { encodeRecord } from '../../schemas/registry.js';
import type { AckWriter } from './ackWriter.js';
import type { PusherConfig } from './config.js';
import { mayJoin, type Connection } from './connection.js';
import type { ConnectionTable } from './connectionTable.js';
import type { FrameHandlers } from './clientFrames.js';
import type { PusherMetrics } from './pusherMetrics.js';
import type { TaskRunner } from './taskRunner.js';
import type { createTokenClock } from './tokenClock.js';
import { TokenError, type TokenVerifier } from './verifyToken.js';

/** Subscriptions one connection may hold. */
const MAX_GROUPS_PER_CONNECTION = 100;

export interface FrameHandlerDeps {
  config: PusherConfig;
  logger: Logger;
  redis: Redis;
  table: ConnectionTable;
  verify: TokenVerifier;
  metrics: PusherMetrics;
  acks: Pick<AckWriter, 'add'>;
  taskRunner: Pick<TaskRunner, 'onAck'>;
  publisher: BatchPublisher;
  upstreamTopic: string;
  trace?: TraceWriter;
  tokenClock: ReturnType<typeof createTokenClock>;
}

/**
 * What a pusher does with each client frame (clientFrames.ts parses and bounds them): acks,
 * upstream messages, group (un)subscriptions and token renewals. One set for every connection
 * (each handler receives the connection as an argument).
 */
export function createFrameHandlers(deps: FrameHandlerDeps): FrameHandlers {
  const { config, logger, redis, table, metrics } = deps;
  const frameHandlers: FrameHandlers = {
    limits: config,
    // Only ids delivered on `c` get here (clientFrames.ts); queued first, counted and traced once taken.
    ack: (c, ids) => {
      // Kept as long as its message; an id with no known expiry (cannot happen: ids are checked against these) a day.
      const expiresAt = ids.map((id) => c.expiryOf(id) ?? Date.now() + 86_400_000);
      if (!deps.acks.add(c.app, c.user, c.device, ids, expiresAt)) return false;
      metrics.acks.inc(ids.length);
      // ifExists: an ack annotates the dispatcher's trace record, never creates one.
      if (deps.trace) for (const id of ids) deps.trace.note(id, { kind: 'acked', user: c.user, device: c.device, at: Date.now() }, { ifExists: true });
      deps.taskRunner.onAck(ids);
      return true;
    },
    onUnknownAcks: (n) => metrics.unknownAcks.inc(n),
    onFrameError: (c, err) => {
      metrics.frameErrors.inc();
      logger.error({ err, conn: c.id, app: c.app, user: c.user, device: c.device }, 'client frame handler failed; closing the connection');
    },
    upstream: (c, payload) => publishUpstream(deps, c, payload),
    // Async: a failure is this connection's, handled like a throwing frame handler.
    auth: (c, token) =>
      void reauthenticate(deps, frameHandlers.unsubscribe, c, token).catch((err: unknown) => {
        frameHandlers.onFrameError(c, err);
        c.close(CLOSE.INTERNAL_ERROR, 'internal error');
      }),
    subscribe: async (c, group) => {
      if (!mayJoin(c.groupGrants, group)) return FRAME_ERROR.GROUP_FORBIDDEN;
      if (!c.groups?.has(group) && (c.groups?.size ?? 0) >= MAX_GROUPS_PER_CONNECTION) return FRAME_ERROR.TOO_MANY_GROUPS;
      // The reply waits for the group index: once a client sees "subscribed", a group message reaches it.
      if (table.subscribe(c, group)) await putGroupNodes(redis, config.nodeId, [{ app: c.app, group }], config.routeTtlMs);
      return undefined;
    },
    unsubscribe: (c, group) => {
      if (table.unsubscribe(c, group)) void removeGroupNodes(redis, config.nodeId, [{ app: c.app, group }]).catch(() => undefined);
    },
    onBadFrame: (reason) => metrics.badFrames.inc({ reason }),
  };

  return frameHandlers;
}

/** A fresh token for an open connection: same app, user and device, later expiry. */
async function reauthenticate(deps: FrameHandlerDeps, unsubscribe: (c: Connection, group: string) => void, conn: Connection, token: string): Promise<void> {
  const refuse = (message: string) => {
    deps.metrics.badFrames.inc({ reason: 'auth' });
    conn.send(errorFrame(FRAME_ERROR.TOKEN_REFUSED, message));
  };
  let claims;
  try {
    claims = await deps.verify(token);
  } catch (err) {
    return refuse(err instanceof TokenError ? `${err.code}: ${err.message}` : 'invalid token');
  }
  if (conn.closed) return;
  if (claims.app !== conn.app || claims.user !== conn.user || claims.device !== conn.device) {
    return refuse('the token is for another app, user or device');
  }
  if (conn.groupGrants !== 'open') {
    conn.groupGrants = claims.groups;
    // A renewed token grants what it grants now: groups it no longer grants are left, and the
    // client is told (else a revoked member kept a group's messages for as long as it renewed).
    const revoked = [...(conn.groups ?? [])].filter((g) => !mayJoin(claims.groups, g));
    for (const group of revoked) {
      unsubscribe(conn, group);
      conn.send(unsubscribedFrame(group, 'the renewed token does not grant this group'));
    }
  }
  conn.tokenExpiresAt = Math.max(conn.tokenExpiresAt, claims.exp * 1000);
  deps.tokenClock.track(conn);
  conn.send(authedFrame(conn.tokenExpiresAt));
}

function publishUpstream(deps: FrameHandlerDeps, conn: Connection, payload: unknown): void {
  const rec = encodeRecord('Upstream', {
    id: newId(),
    app: conn.app,
    user: conn.user,
    device: conn.device,
    nodeId: deps.config.nodeId,
    payload: JSON.stringify(payload),
    receivedAt: Date.now(),
  });
  deps.publisher.publish(deps.upstreamTopic, [{ key: conn.userKey, value: rec.value, headers: rec.headers }]).catch((err: { code?: string }) =>
    // Over the node's upstream byte budget (OVERLOADED) is told apart from Kafka being down.
    conn.send(
      err.code === 'OVERLOADED'
        ? errorFrame(FRAME_ERROR.UPSTREAM_BACKLOG, "the node's upstream queue is full; this frame was not taken, resend it later")
        : errorFrame(FRAME_ERROR.UPSTREAM_UNAVAILABLE, 'upstream could not be published; retry later'),
    ),
  );
}
