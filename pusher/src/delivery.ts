import type { Logger } from '../../platform/logger.js';
import type { Kick } from '../../store/kicks.js';
import type { TraceWriter } from '../../store/traceRecords.js';
import { wireFrame } from '../../platform/patches/wireFrame.js';
import { CLOSE } from '../../protocol/codes.js';
import { kickFrame, messageFrame } from '../../protocol/frames.js';
import type { NodeDelivery } from '../../schemas/types.js';
import type { PusherConfig } from './config.js';
import type { ConnectionTable } from './connectionTable.js';
import type { PusherMetrics } from './pusherMetrics.js';
import type { TaskRunner } from './taskRunner.js';

export interface DeliveryDeps {
  config: PusherConfig;
  logger: Logger;
  metrics: PusherMetrics;
  table: ConnectionTable;
  taskRunner: Pick<TaskRunner, 'run'>;
  trace?: TraceWriter;
}

/**
 * Writes a routed message to the local connections it is for: a user's, a group's or the
 * app's; task messages (groups and broadcasts) through the task runner, at its pace. Framed
 * once, written as is to every socket. A socket that cannot take it (slow) is counted and
 * traced, never waited for.
 */
export function deliverRecord(rec: NodeDelivery, deps: DeliveryDeps): void {
  const { config, logger, metrics, table } = deps;
  if (rec.expiresAt <= Date.now()) {
    metrics.dropped.inc({ reason: 'expired' });
    deps.trace?.note(rec.id, { kind: 'dropped', nodeId: config.nodeId, reason: 'expired', at: Date.now() });
    return;
  }
  const conns =
    rec.target === 'USER' ? table.forUser(rec.app, rec.user ?? '') : rec.target === 'GROUP' ? table.forGroup(rec.app, rec.group ?? '') : table.forApp(rec.app);
  // Framed once, written as is to every socket it is for.
  const frame = wireFrame(messageFrame(rec));
  if (rec.taskId) {
    // A persistent group/broadcast message may be acked by every connection it is for (the task writes it at its pace).
    if (rec.persistent && conns) for (const c of conns) c.noteDelivered(rec.id, rec.expiresAt);
    void deps.taskRunner.run(rec.taskId, rec.id, frame, conns ? [...conns] : [], rec.expiresAt);
    return;
  }
  if (!conns) {
    metrics.dropped.inc({ reason: 'not-connected' });
    deps.trace?.note(rec.id, { kind: 'dropped', nodeId: config.nodeId, reason: 'not-connected', at: Date.now() });
    return;
  }
  const at = Date.now();
  for (const conn of conns) {
    if (conn.deliverLive(rec.id, frame)) {
      if (rec.persistent) conn.noteDelivered(rec.id, rec.expiresAt);
      metrics.delivered.inc({ path: 'live' });
      deps.trace?.note(rec.id, { kind: 'written', nodeId: config.nodeId, user: conn.user, device: conn.device, at, path: 'live' });
    } else {
      metrics.dropped.inc({ reason: rec.persistent ? 'slow-persistent' : 'slow-transient' });
      deps.trace?.note(rec.id, { kind: 'dropped', nodeId: config.nodeId, reason: rec.persistent ? 'slow-persistent' : 'slow-transient', at });
    }
  }
  if (logger.isLevelEnabled('debug')) logger.debug({ id: rec.id, traceId: rec.traceId, user: rec.user, connections: conns.size }, 'written');
  metrics.latency.observe((Date.now() - rec.createdAt) / 1000);
}

/** Closes the matching local connections with a kick frame and 4009. */
export function kickLocal(k: Kick, table: ConnectionTable, logger: Logger): void {
  for (const conn of [...(table.forUser(k.app, k.user) ?? [])]) {
    if ((k.device && conn.device !== k.device) || conn.id === k.exceptConn) continue;
    // Runs inside the Redis listener: one bad kick must not take the node down.
    try {
      conn.send(kickFrame(k.reason));
      conn.close(CLOSE.KICKED, k.reason); // cut to 123 bytes on a character boundary
    } catch (err) {
      logger.warn({ err: (err as Error).message, conn: conn.id }, 'kick failed; dropping the socket');
      conn.ws.terminate();
    }
  }
}
