import type { IngestRecord } from '../../schemas/types.js';
import type { Logger } from '../../platform/logger.js';
import { MAX_TRACED_RECIPIENTS, type TraceMeta, type TraceWriter } from '../../store/traceRecords.js';
import { countField, type DispatchOutcome } from '../../store/traceFacts.js';
import { recipientOf } from '../../protocol/recordKeys.js';

export type { DispatchOutcome };

/**
 * Records what the dispatcher did with each record of a slice in the
 * message's trace (see store/traceRecords.ts): one `meta`, one `r:` per
 * recipient (at most MAX_TRACED_RECIPIENTS per message and slice) and a count
 * per outcome (a replayed copy counts again). Logs each record at debug level with its trace id. `byNode`
 * is the routing result: the nodes each record was written to.
 */
export function createDispatchTracer({ trace, logger }: { trace: TraceWriter; logger: Logger }) {
  return (records: IngestRecord[], byNode: Map<string, IngestRecord[]>, now: number): void => {
    const named = new Map<string, number>();
    const debug = logger.isLevelEnabled('debug');
    const nodesOf = new Map<IngestRecord, string[]>();
    for (const [node, recs] of byNode) {
      for (const r of recs) {
        let list = nodesOf.get(r);
        if (!list) nodesOf.set(r, (list = []));
        list.push(node);
      }
    }
    for (const r of records) {
      const nodes = nodesOf.get(r) ?? [];
      const outcome: DispatchOutcome = nodes.length > 0 ? 'forwarded' : r.expiresAt <= now ? 'expired' : r.persistent ? 'offline' : 'dropped-transient';
      if (debug) logger.debug({ id: r.id, traceId: r.traceId, user: r.user, target: r.target, outcome, nodes }, 'dispatched');
      const seen = named.get(r.id) ?? 0;
      if (seen === 0) {
        const meta: TraceMeta = {
          app: r.app,
          target: r.target,
          group: r.group,
          persistent: r.persistent,
          createdAt: r.createdAt,
          expiresAt: r.expiresAt,
          traceId: r.traceId,
          taskId: r.taskId,
        };
        trace.set(r.id, 'meta', JSON.stringify(meta));
      }
      trace.incr(r.id, countField(outcome), 1);
      if (seen < MAX_TRACED_RECIPIENTS) {
        const who = recipientOf(r);
        // A later routing to nodes (a replay that re-delivers) replaces the recorded one; a record
        // that went nowhere this time (a replay the dispatcher skipped as already handled) does not.
        trace.note(r.id, { kind: 'routed', recipient: who, at: now, outcome, nodes }, { ifAbsent: outcome !== 'forwarded' });
      }
      named.set(r.id, seen + 1);
    }
  };
}
