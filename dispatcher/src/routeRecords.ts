import type { IngestRecord } from '../../schemas/types.js';
import type { Route } from '../../common/src/routes.js';

export interface RoutingResult {
  /** Records to write per node, in input order (which keeps per-user order). */
  byNode: Map<string, IngestRecord[]>;
  /** Transient records whose user had no live connection: dropped. */
  droppedTransient: number;
  /** Persistent records whose user had no live connection: they wait in MongoDB. */
  leftOffline: number;
  expired: number;
}

/**
 * Decides which pusher nodes get each record. Pure: the caller looks routes
 * up (one pipelined Redis round trip per batch) and passes the live nodes.
 */
export function routeRecords(
  records: IngestRecord[],
  routesOf: (app: string, user: string) => Route[],
  liveNodes: Set<string>,
  now: number,
): RoutingResult {
  const result: RoutingResult = { byNode: new Map(), droppedTransient: 0, leftOffline: 0, expired: 0 };
  for (const rec of records) {
    if (rec.expiresAt <= now) {
      result.expired++;
      continue;
    }
    const nodes = new Set<string>();
    if (rec.user !== null) {
      for (const r of routesOf(rec.app, rec.user)) if (liveNodes.has(r.nodeId)) nodes.add(r.nodeId);
    }
    if (nodes.size === 0) {
      if (rec.persistent) result.leftOffline++;
      else result.droppedTransient++;
      continue;
    }
    for (const node of nodes) {
      let list = result.byNode.get(node);
      if (!list) result.byNode.set(node, (list = []));
      list.push(rec);
    }
  }
  return result;
}
