import type { Admin } from 'kafkajs';
import type { Topics } from '../../protocol/topics.js';

export interface PartitionLag {
  partition: number;
  /** Next offset the group will read; -1 when it has committed nothing. */
  committed: number;
  /** High watermark: offset of the next record written. */
  end: number;
  /** Records written and not yet committed by the group. */
  lag: number;
}

export interface GroupLag {
  group: string;
  /** Kafka's group state: Stable, Empty, PreparingRebalance, ... */
  state: string;
  members: number;
  topics: { topic: string; lag: number; partitions: PartitionLag[] }[];
  lag: number;
}

/**
 * Consumer lag per group, topic and partition: committed offsets
 * (`fetchOffsets`) against the topics' high watermarks (`fetchTopicOffsets`),
 * the same figures as `kafka-consumer-groups --describe`. A partition the
 * group never committed counts everything still retained (high - low).
 */
export async function consumerLag(admin: Admin, groups: GroupTopics[]): Promise<GroupLag[]> {
  if (groups.length === 0) return [];
  const described = await admin.describeGroups(groups.map((g) => g.group));
  const ends = new Map<string, Promise<Map<number, { high: number; low: number }>>>();
  const endsOf = (topic: string) => {
    let p = ends.get(topic);
    if (!p) {
      p = admin.fetchTopicOffsets(topic).then((rows) => new Map(rows.map((r) => [r.partition, { high: Number(r.high), low: Number(r.low) }])));
      ends.set(topic, p);
    }
    return p;
  };
  const out: GroupLag[] = [];
  for (const { group, topics: known } of groups) {
    const d = described.groups.find((g) => g.groupId === group);
    const committed = await admin.fetchOffsets({ groupId: group, ...(known ? { topics: known } : {}) });
    const topics: GroupLag['topics'] = [];
    for (const t of committed) {
      const topicEnds = await endsOf(t.topic).catch(() => new Map<number, { high: number; low: number }>());
      const partitions = t.partitions
        .map((p) => {
          const e = topicEnds.get(p.partition) ?? { high: 0, low: 0 };
          const c = Number(p.offset);
          return { partition: p.partition, committed: c, end: e.high, lag: Math.max(0, c < 0 ? e.high - e.low : e.high - c) };
        })
        .sort((a, b) => a.partition - b.partition);
      topics.push({ topic: t.topic, partitions, lag: partitions.reduce((n, p) => n + p.lag, 0) });
    }
    out.push({ group, state: d?.state ?? 'Unknown', members: d?.members.length ?? 0, topics, lag: topics.reduce((n, t) => n + t.lag, 0) });
  }
  return out;
}

/** A consumer group and, when known, the topics it reads (else the topics it committed). */
export interface GroupTopics {
  group: string;
  topics?: string[];
}

/**
 * The groups of one stack: the service groups with their topics (reported
 * even before their first commit), and every other group named
 * `<prefix>push-...` that Kafka knows, except the groups of pusher nodes that
 * are gone (their topics are no longer written).
 */
export async function stackGroups(admin: Admin, topics: Topics, prefix: string, liveNodeIds: string[]): Promise<GroupTopics[]> {
  const { groups } = await admin.listGroups();
  const known = new Map<string, string[]>([
    [topics.groups.collectorEvents, [topics.events]],
    [topics.groups.dispatcher, [topics.ingest]],
    ...liveNodeIds.map((id): [string, string[]] => [topics.groups.pusher(id), [topics.node(id)]]),
  ]);
  const existing = new Set(groups.map((g) => g.groupId));
  const pusherPrefix = `${prefix}push-pusher-`;
  const others = [...existing].filter((g) => g.startsWith(`${prefix}push-`) && !known.has(g) && !g.startsWith(pusherPrefix));
  return [...[...known].filter(([g]) => existing.has(g)).map(([group, t]) => ({ group, topics: t })), ...others.map((group) => ({ group }))].sort((a, b) =>
    a.group < b.group ? -1 : 1,
  );
}
