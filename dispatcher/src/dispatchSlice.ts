import type { KafkaMessage, Message } from 'kafkajs';
import type { Route } from '../../store/routeTable.js';
import type { Delivery } from '../../store/deliveries.js';
import { decodeRecord, encodeRecord, latestSchemaId, RecordDecodeError, sameEncoding, SCHEMA_HEADER, schemaIdOf } from '../../schemas/registry.js';
import type { IngestRecord } from '../../schemas/types.js';
import { routeRecords, type RoutingResult } from './routeRecords.js';
import { deliveriesOf } from './deliveriesOf.js';
import type { ReplayGuard } from './replayGuard.js';
import { recordKey } from '../../protocol/recordKeys.js';

export type DispatchOutcome = 'forwarded' | 'offline' | 'dropped-transient' | 'expired' | 'dead-lettered';

/** What routing one slice needs from Kafka, Redis and the store: real clients in the service, fakes in tests. */
export interface DispatchSliceDeps {
  /** Records handled before (replays, a reset group) are re-dispatched idempotently (replayGuard.ts). */
  guard: Pick<ReplayGuard, 'seenBefore' | 'notAgain' | 'blockedNodes'>;
  appendDeliveries(deliveries: Delivery[]): Promise<unknown>;
  /** Each user's routes, in the order asked (store/routeTable.ts lookupRoutes). */
  lookupRoutes(users: { app: string; user: string }[]): Promise<Route[][]>;
  groupNodes(app: string, group: string): Promise<string[]>;
  /** The live nodes, at least as fresh as needed to know the `wanted` ones. */
  liveNodes(wanted: Iterable<string>): Promise<Set<string>>;
  recordFanout(taskId: string, nodes: string[]): Promise<void>;
  /** For the status API only: a failure is logged, never holds up routing. */
  recordTaskBoots(fanout: Map<string, string[]>): Promise<void>;
  publish(topic: string, messages: Message[]): Promise<void>;
  nodeTopic(nodeId: string): string;
  /** An undecodable record goes to push.dlq (and is counted and logged by the caller). */
  deadLetter(message: KafkaMessage, err: RecordDecodeError): Promise<void>;
  trace(records: IngestRecord[], byNode: Map<string, IngestRecord[]>, now: number): void;
  /** Everything up to `offset` was forwarded: the offset may be resolved and committed. */
  forwarded(offset: string): void;
  count(outcome: DispatchOutcome, n: number): void;
  now?: () => number;
}

interface Decoded {
  records: IngestRecord[];
  recordOf: Map<KafkaMessage, IngestRecord>;
  /** Ingest records whose bytes are already a valid NodeDelivery are forwarded as they came. */
  bytesOf: Map<IngestRecord, Buffer>;
}

async function decodeSlice(deps: DispatchSliceDeps, messages: KafkaMessage[]): Promise<Decoded> {
  const out: Decoded = { records: [], recordOf: new Map(), bytesOf: new Map() };
  for (const message of messages) {
    try {
      const rec = decodeRecord('IngestRecord', message.value, message.headers);
      out.records.push(rec);
      out.recordOf.set(message, rec);
      if (sameEncoding(schemaIdOf(message.headers)!, 'NodeDelivery')) out.bytesOf.set(rec, message.value!);
    } catch (err) {
      if (!(err instanceof RecordDecodeError)) throw err;
      deps.count('dead-lettered', 1);
      await deps.deadLetter(message, err);
    }
  }
  return out;
}

/** The nodes each record may go to: its recipients' live nodes, less those a replayed record already reached. */
async function resolveNodes(deps: DispatchSliceDeps, records: IngestRecord[], seen: Set<IngestRecord>) {
  const users = new Map<string, { app: string; user: string }>();
  for (const r of records) if (r.user !== null) users.set(`${r.app}|${r.user}`, { app: r.app, user: r.user });
  const found = await deps.lookupRoutes([...users.values()]);
  const routesByUser = new Map([...users.keys()].map((k, i) => [k, found[i]!]));
  const wanted = new Set(found.flatMap((routes) => routes.map((r) => r.nodeId)));
  const groups = new Map<string, string[]>();
  for (const r of records) {
    if (r.target === 'GROUP' && r.group !== null && !groups.has(`${r.app}|${r.group}`)) {
      const nodes = await deps.groupNodes(r.app, r.group);
      groups.set(`${r.app}|${r.group}`, nodes);
      for (const n of nodes) wanted.add(n);
    }
  }
  const live = await deps.liveNodes(wanted);
  const blocked =
    seen.size > 0 ? await deps.guard.blockedNodes(seen, (r) => routesByUser.get(`${r.app}|${r.user}`) ?? []) : new Map<IngestRecord, Set<string>>();
  return (r: IngestRecord): string[] => {
    const nodes =
      r.target === 'USER'
        ? (routesByUser.get(`${r.app}|${r.user}`) ?? []).map((x) => x.nodeId)
        : r.target === 'GROUP'
          ? (groups.get(`${r.app}|${r.group}`) ?? [])
          : live;
    const no = blocked.get(r);
    return [...nodes].filter((n) => live.has(n) && !no?.has(n));
  };
}

async function forward(deps: DispatchSliceDeps, result: RoutingResult, bytesOf: Map<IngestRecord, Buffer>): Promise<void> {
  const nodeSchema = latestSchemaId('NodeDelivery');
  await Promise.all(
    [...result.byNode].map(([nodeId, recs]) =>
      deps.publish(
        deps.nodeTopic(nodeId),
        recs.map((r) => ({
          key: recordKey(r.app, r),
          value: bytesOf.get(r) ?? encodeRecord('NodeDelivery', r).value,
          headers: { [SCHEMA_HEADER]: nodeSchema, 'push-trace': r.traceId },
        })),
      ),
    ),
  );
}

/**
 * Routes one slice of push.ingest: decodes it (undecodable records to push.dlq),
 * stores the persistent deliveries first, looks up routes and live nodes,
 * records task fan-outs, forwards each node its records, then reports the
 * slice forwarded. Throws when a step fails: nothing is reported forwarded,
 * so the slice is handled again.
 */
export async function dispatchSlice(deps: DispatchSliceDeps, topic: string, partition: number, messages: KafkaMessage[]): Promise<void> {
  const now = deps.now ?? Date.now;
  const { records, recordOf, bytesOf } = await decodeSlice(deps, messages);
  const seen = await deps.guard.seenBefore(topic, partition, messages, recordOf);
  const notAgain = seen.size > 0 ? await deps.guard.notAgain(seen) : new Set<IngestRecord>();
  // Stored first, then routed: see deliveriesOf. One call for the whole slice.
  const stored = deliveriesOf(records, now());
  if (stored.length > 0) await deps.appendDeliveries(stored);
  const nodesOf = await resolveNodes(deps, records, seen);
  const result = routeRecords(notAgain.size > 0 ? records.filter((r) => !notAgain.has(r)) : records, nodesOf, now());
  // Tasks learn their fan-out before any pusher starts, so each knows its share of the rate.
  for (const [taskId, nodes] of result.fanout) await deps.recordFanout(taskId, nodes);
  if (result.fanout.size > 0) await deps.recordTaskBoots(result.fanout);
  await forward(deps, result, bytesOf);
  deps.trace(records, result.byNode, now());
  // Offsets move only after every forward succeeded: a crash before this line replays the slice.
  const last = messages.at(-1);
  if (last) deps.forwarded(last.offset);
  let forwarded = 0;
  for (const recs of result.byNode.values()) forwarded += recs.length;
  deps.count('forwarded', forwarded);
  deps.count('offline', result.leftOffline);
  deps.count('dropped-transient', result.droppedTransient);
  deps.count('expired', result.expired);
}
