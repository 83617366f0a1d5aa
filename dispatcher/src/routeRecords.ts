import type { IngestRecord } from '../../schemas/types.js';

export interface RoutingResult {
  /** Records to write per node, in input order (which keeps per-user order). */
  byNode: Map<string, IngestRecord[]>;
  /** Transient records with no live connection to go to: dropped. */
  droppedTransient: number;
  /** Persistent records with no live connection to go to: they wait in MongoDB. */
  leftOffline: number;
  expired: number;
  /** Nodes each task record was sent to (none is a valid answer: nobody to reach). */
  fanout: Map<string, string[]>;
}

/**
 * Decides which pusher nodes get each record. Pure: the caller resolves
 * `nodesOf` beforehand (one pipelined Redis round trip per batch for user
 * routes, one read per group) and passes only live nodes.
 */
export function routeRecords(records: IngestRecord[], nodesOf: (rec: IngestRecord) => Iterable<string>, now: number): RoutingResult {
  const result: RoutingResult = { byNode: new Map(), droppedTransient: 0, leftOffline: 0, expired: 0, fanout: new Map() };
  for (const rec of records) {
    if (rec.expiresAt <= now) {
      result.expired++;
      continue;
    }
    const nodes = new Set(nodesOf(rec));
    if (rec.taskId) result.fanout.set(rec.taskId, [...nodes]);
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
