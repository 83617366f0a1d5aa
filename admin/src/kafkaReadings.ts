import type { Admin, Kafka } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { Topics } from '../../protocol/topics.js';
import { liveNodes, type NodeInfo } from '../../store/nodeRegistry.js';
import { consumerLag, stackGroups, type GroupLag } from '../../platform/kafka/consumerLag.js';
import { withTimeout } from '../../platform/errors.js';
import { Gauge, type Registry } from '../../platform/metrics.js';

export interface LagReport {
  groups: GroupLag[];
  total: number;
  error?: string;
}

export interface DlqSize {
  topic: string;
  /** Records retained on the topic; null when Kafka did not answer. */
  records: number | null;
  /** Dead letters not purged (the DLQ index); null when unknown. */
  entries: number | null;
  error?: string;
}

/**
 * What the status reads from Kafka: the stack's consumer lag and the dead-letter
 * topic's size, through one admin client connected on first use. Lag is cached
 * for a second so a few dashboards polling at once cost Kafka one round of
 * offset requests.
 */
export class KafkaReadings {
  private admin: Admin | undefined;
  private connecting: Promise<Admin> | undefined;
  private lagCache: { at: number; report: Promise<LagReport> } | undefined;

  constructor(
    private readonly deps: {
      kafka: Kafka;
      topics: Topics;
      topicPrefix: string;
      /** Dead letters not purged (the DLQ index); the topic's record count is reported either way. */
      dlqEntries?: () => Promise<number>;
    },
  ) {}

  /** Lag of the stack's consumer groups (the pushers' groups of these nodes included); errors are reported, not thrown. */
  lag(nodes: NodeInfo[]): Promise<LagReport> {
    if (this.lagCache && Date.now() - this.lagCache.at < 1000) return this.lagCache.report;
    const report = this.readLag(nodes);
    this.lagCache = { at: Date.now(), report };
    return report;
  }

  async dlqSize(): Promise<DlqSize> {
    const { dlqEntries, topics } = this.deps;
    const entries = dlqEntries ? await withTimeout(dlqEntries(), 5000, 'dead-letter entries').catch(() => null) : null;
    try {
      const ends = await withTimeout((await this.connect()).fetchTopicOffsets(topics.dlq), 5000, 'dead-letter offsets');
      return { topic: topics.dlq, records: ends.reduce((n, p) => n + Number(p.high) - Number(p.low), 0), entries };
    } catch (err) {
      return { topic: topics.dlq, records: null, entries, error: (err as Error).message };
    }
  }

  async close(): Promise<void> {
    await this.admin?.disconnect().catch(() => undefined);
  }

  private async readLag(nodes: NodeInfo[]): Promise<LagReport> {
    const { topics, topicPrefix } = this.deps;
    try {
      const a = await this.connect();
      const groups = await withTimeout(
        stackGroups(
          a,
          topics,
          topicPrefix,
          nodes.map((n) => n.id),
        ).then((g) => consumerLag(a, g)),
        5000,
        'consumer lag',
      );
      return { groups, total: groups.reduce((n, g) => n + g.lag, 0) };
    } catch (err) {
      return { groups: [], total: 0, error: (err as Error).message };
    }
  }

  private connect(): Promise<Admin> {
    return (this.connecting ??= (async () => {
      const a = this.deps.kafka.admin();
      await a.connect();
      this.admin = a;
      return a;
    })().catch((err: unknown) => {
      this.connecting = undefined;
      throw err;
    }));
  }
}

/** `push_consumer_lag` and `push_dead_letter_records`, computed on scrape. */
export function registerKafkaGauges(registry: Registry, readings: KafkaReadings, redis: Redis): void {
  const registers = [registry];
  new Gauge({
    name: 'push_consumer_lag',
    help: 'Records not yet committed by a consumer group, per group and topic (computed on scrape)',
    labelNames: ['group', 'topic'],
    registers,
    async collect() {
      const report = await readings.lag(await liveNodes(redis).catch(() => []));
      this.reset();
      for (const g of report.groups) for (const t of g.topics) this.set({ group: g.group, topic: t.topic }, t.lag);
    },
  });
  new Gauge({
    name: 'push_dead_letter_records',
    help: 'Records on push.dlq (retained on the topic)',
    registers,
    async collect() {
      const d = await readings.dlqSize();
      if (d.records !== null) this.set(d.records);
    },
  });
}
