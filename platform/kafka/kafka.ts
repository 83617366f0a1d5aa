import { Kafka, logLevel, Partitioners, type Consumer, type ICustomPartitioner, type LogEntry, type Producer, type ProducerConfig } from 'kafkajs';
import type { Logger } from '../logger.js';
// Faster produce-record encoding for KafkaJS (see the module): applied before the first produce.
import '../patches/kafkajsRecordEncoder.js';
// KafkaJS's 1 ms request-queue timer loop, skipped when nothing waits (see the module): every service, not only pushers.
import '../patches/kafkajsIdleFix.js';

export interface KafkaOptions {
  clientId: string;
  brokers: string[];
  logger: Logger;
}

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/** A kafkajs client whose logs go through our JSON logger. Retries are short and bounded. */
export function createKafka({ clientId, brokers, logger }: KafkaOptions): Kafka {
  const kafkaLog = logger.child({ component: 'kafkajs' });
  return new Kafka({
    clientId,
    brokers,
    connectionTimeout: 2000,
    requestTimeout: 10_000,
    retry: { initialRetryTime: 100, maxRetryTime: 2000, retries: 5 },
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      const { message, ...extra } = entry.log;
      kafkaLog[LEVELS[entry.level] ?? 'info']({ namespace: entry.namespace, ...extra }, message);
    },
  });
}

/**
 * Kafka's Java-compatible murmur2 partitioner, remembering the partition of
 * each string key: it depends only on the key and the partition count, and
 * hashing the key (and filtering the partition list) on every record costs
 * more than the rest of partitioning. Bounded: past `maxKeys` it starts over.
 */
export function createMemoPartitioner({ maxKeys = 100_000 } = {}): ICustomPartitioner {
  return () => {
    const inner = Partitioners.DefaultPartitioner();
    const memo = new Map<string, number>();
    return (args) => {
      const { message, partitionMetadata } = args;
      if (typeof message.key !== 'string' || (message.partition !== undefined && message.partition !== null)) return inner(args);
      const k = `${partitionMetadata.length}|${message.key}`;
      let p = memo.get(k);
      if (p === undefined) {
        p = inner(args);
        if (memo.size >= maxKeys) memo.clear();
        memo.set(k, p);
      }
      return p;
    };
  };
}

/** Java-compatible murmur2 partitioning, so keys land where Kafka's own tools expect. */
export function createProducer(kafka: Kafka, config: ProducerConfig = {}): Producer {
  return kafka.producer({
    createPartitioner: createMemoPartitioner(),
    allowAutoTopicCreation: false,
    ...config,
  });
}

/**
 * Creates topics that do not exist yet (existing ones are left alone) and
 * waits until every partition has a leader. Several services start at once
 * and create the same topics, so "already exists" is success, and a topic
 * another process created a moment ago may need a few metadata rounds.
 */
export async function ensureTopics(kafka: Kafka, topics: { topic: string; numPartitions: number }[], { attempts = 20 } = {}): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (let attempt = 1; ; attempt++) {
      try {
        const existing = new Set(await admin.listTopics());
        const missing = topics.filter((t) => !existing.has(t.topic));
        if (missing.length > 0) {
          await admin
            .createTopics({ waitForLeaders: true, topics: missing.map((t) => ({ topic: t.topic, numPartitions: t.numPartitions, replicationFactor: 1 })) })
            .catch((err: { errors?: { type?: string }[] }) => {
              if (!err.errors?.every((e) => e.type === 'TOPIC_ALREADY_EXISTS')) throw err;
            });
        }
        const { topics: meta } = await admin.fetchTopicMetadata({ topics: topics.map((t) => t.topic) });
        if (meta.length === topics.length && meta.every((t) => t.partitions.length > 0 && t.partitions.every((p) => p.leader >= 0))) return;
      } catch (err) {
        if (attempt >= attempts) throw err;
      }
      if (attempt >= attempts) throw new Error(`topics not ready: ${topics.map((t) => t.topic).join(', ')}`);
      await new Promise((r) => setTimeout(r, Math.min(2000, 100 * attempt)));
    }
  } finally {
    await admin.disconnect();
  }
}

/**
 * Commits a partition's position just past `offset` (Kafka stores the next
 * offset to read). Used with autoCommit off, after the work for the record
 * is done, so a crash before the commit replays it rather than loses it.
 */
export async function commitThrough(consumer: Consumer, topic: string, partition: number, offset: string): Promise<void> {
  await consumer.commitOffsets([{ topic, partition, offset: (BigInt(offset) + 1n).toString() }]);
}

/**
 * Leaves the group, but gives up after `ms`: a consumer caught in a rebalance
 * or a retry can take its whole session timeout to disconnect, which would
 * eat the service's shutdown budget. Offsets are committed as records are
 * handled, so not waiting loses nothing; the group notices the member is gone
 * when its session expires.
 */
export async function disconnectWithin(consumer: Consumer, ms: number, onTimeout: () => void): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), ms);
  });
  try {
    if ((await Promise.race([consumer.disconnect().then(() => 'done' as const), timedOut])) === 'timeout') onTimeout();
  } finally {
    clearTimeout(timer);
  }
}
