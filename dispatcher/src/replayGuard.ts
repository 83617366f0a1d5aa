import type { KafkaMessage } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { DeliveryStore } from '../../store/deliveryStore.js';
import type { Route } from '../../store/routeTable.js';
import type { IngestRecord } from '../../schemas/types.js';

/** Header a replay puts on the records it re-produces: the replay id. */
export const REPLAY_HEADER = 'push-replay';

/**
 * Highest push.ingest offset handled per partition, kept across restarts:
 *
 *   push:dispatch-hw:<topic>   hash  partition -> offset
 *
 * A record at or below it was handled before (a consumer-group reset with
 * Kafka's tools, or a crash between forwarding and committing), so it is
 * re-dispatched with the checks below instead of being delivered again.
 */
const hwKey = (topic: string) => `push:dispatch-hw:${topic}`;
const RAISE_HW = `local c = redis.call('HGET', KEYS[1], ARGV[1])
if not c or tonumber(c) < tonumber(ARGV[2]) then redis.call('HSET', KEYS[1], ARGV[1], ARGV[2]) end
return 1`;

export function headerText(headers: KafkaMessage['headers'], name: string): string | undefined {
  const h = headers?.[name];
  const first = Array.isArray(h) ? h[0] : h;
  return first === undefined ? undefined : first.toString();
}

/**
 * Makes re-dispatching an id idempotent: the dispatcher tells which records of
 * a slice were seen before, and for those decides what may still go live.
 * Clients never see a duplicate and an acknowledged message is never sent
 * again to the device that acknowledged it:
 *   - transient records are dropped (they were for the moment they were sent);
 *   - a group or broadcast record whose task already fanned out is not sent again;
 *   - a persistent user record goes to a node only if none of the user's devices
 *     on that node acknowledged it (a device that did not gets it from the
 *     store at its next connect when another device on the node did).
 * Their deliveries are stored again under the same ids, which the store ignores.
 */
export function createReplayGuard({ redis, store }: { redis: Redis; store: Pick<DeliveryStore, 'deviceState'> }) {
  return {
    /** Records of a slice that were handled before: replay copies, or at/below the partition's high-water mark. */
    async seenBefore(topic: string, partition: number, messages: KafkaMessage[], records: Map<KafkaMessage, IngestRecord>): Promise<Set<IngestRecord>> {
      const hw = await redis.hget(hwKey(topic), String(partition));
      const mark = hw === null ? -1n : BigInt(hw);
      const seen = new Set<IngestRecord>();
      for (const m of messages) {
        const rec = records.get(m);
        if (rec && (BigInt(m.offset) <= mark || headerText(m.headers, REPLAY_HEADER) !== undefined)) seen.add(rec);
      }
      return seen;
    },

    /** Called once a slice was forwarded, before its offsets are committed. */
    async raiseHighWater(topic: string, partition: number, offset: string): Promise<void> {
      await redis.eval(RAISE_HW, 1, hwKey(topic), String(partition), offset);
    },

    /** Of the records seen before, those that must not be routed again at all. */
    async notAgain(seen: Set<IngestRecord>): Promise<Set<IngestRecord>> {
      const skip = new Set<IngestRecord>();
      const tasks = new Map<string, IngestRecord[]>();
      for (const r of seen) {
        if (!r.persistent) skip.add(r);
        else if (r.taskId) tasks.set(r.taskId, [...(tasks.get(r.taskId) ?? []), r]);
      }
      if (tasks.size > 0) {
        const ids = [...tasks.keys()];
        const pipeline = redis.pipeline();
        for (const id of ids) pipeline.hget(`push:task:${id}`, 'fannedOut');
        const res = (await pipeline.exec()) ?? [];
        ids.forEach((id, i) => {
          if (res[i]?.[1]) for (const r of tasks.get(id)!) skip.add(r);
        });
      }
      return skip;
    },

    /**
     * For persistent user records seen before: the nodes they must not go to,
     * because a device of the user connected there acknowledged the id.
     */
    async blockedNodes(seen: Set<IngestRecord>, routesOf: (r: IngestRecord) => Route[]): Promise<Map<IngestRecord, Set<string>>> {
      const blocked = new Map<IngestRecord, Set<string>>();
      const acked = new Map<string, Promise<Set<string>>>();
      const ackedBy = (app: string, user: string, device: string) => {
        const k = `${app}|${user}|${device}`;
        let p = acked.get(k);
        if (!p) acked.set(k, (p = store.deviceState(app, user, device).then((s) => new Set(s.acked))));
        return p;
      };
      for (const r of seen) {
        if (r.target !== 'USER' || !r.persistent || r.user === null) continue;
        for (const route of routesOf(r)) {
          if ((await ackedBy(r.app, r.user, route.device)).has(r.id)) {
            let set = blocked.get(r);
            if (!set) blocked.set(r, (set = new Set()));
            set.add(route.nodeId);
          }
        }
      }
      return blocked;
    },
  };
}

export type ReplayGuard = ReturnType<typeof createReplayGuard>;
