import { Kafka, logLevel, Partitioners, type Consumer, type LogEntry, type Producer, type ProducerConfig } from 'kafkajs';
import type { Logger } from './logger.js';

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

/** Java-compatible murmur2 partitioning, so keys land where Kafka's own tools expect. */
export function createProducer(kafka: Kafka, config: ProducerConfig = {}): Producer {
  return kafka.producer({
    createPartitioner: Partitioners.DefaultPartitioner,
    allowAutoTopicCreation: false,
    ...config,
  });
}

/** Creates topics that do not exist yet; existing ones are left alone. */
export async function ensureTopics(
  kafka: Kafka,
  topics: { topic: string; numPartitions: number }[],
): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = topics.filter((t) => !existing.has(t.topic));
    if (missing.length === 0) return;
    await admin.createTopics({
      waitForLeaders: true,
      topics: missing.map((t) => ({ topic: t.topic, numPartitions: t.numPartitions, replicationFactor: 1 })),
    });
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
