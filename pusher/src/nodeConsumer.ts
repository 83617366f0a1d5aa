import type { Kafka } from 'kafkajs';
import type { Logger } from '../../platform/logger.js';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import type { ServiceDeps } from '../../platform/lifecycle.js';
import { withTimeout } from '../../platform/errors.js';
import { decodeOrDeadLetter, type DeadLetterSink } from '../../platform/kafka/decodeOrDeadLetter.js';
import { runConsumer } from '../../platform/kafka/runConsumer.js';
import type { NodeDelivery } from '../../schemas/types.js';

export interface NodeConsumerDeps {
  kafka: Kafka;
  logger: Logger;
  onClose: ServiceDeps<unknown>['onClose'];
  groupId: string;
  /** This node's topic (push.node.<nodeId>). */
  topic: string;
  dlqTopic: string;
  dlq: BatchPublisher;
  deliver: (record: NodeDelivery) => void;
  onDeadLetter: (code: string) => void;
  sessionTimeoutMs?: number;
}

/**
 * Consumes this node's topic and hands each record to `deliver`; an undecodable record goes to
 * dead letters. It starts from the end of the topic: records written while this node was down
 * were for sockets that are gone; their persistent messages wait in the store. The group's
 * offsets are set to the end explicitly (not "latest at first fetch"), and this resolves only
 * once the consumer has joined, so a caller that accepts clients afterwards leaves no gap
 * between what was routed to a connected client and what is consumed.
 */
export async function startNodeConsumer(deps: NodeConsumerDeps): Promise<void> {
  const { kafka, logger, onClose, groupId, topic } = deps;
  await skipToEnd(kafka, groupId, topic).catch((err: Error) => logger.warn({ err: err.message }, 'could not move the node group to the end of its topic'));
  const consumer = kafka.consumer({ groupId, sessionTimeout: deps.sessionTimeoutMs ?? 10_000, heartbeatInterval: 2000, maxBytesPerPartition: 1 << 20 });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  const sink: DeadLetterSink = {
    publisher: deps.dlq,
    dlqTopic: deps.dlqTopic,
    consumer: groupId,
    count: deps.onDeadLetter,
    logger,
    log: { message: 'undecodable node record sent to dead letters', fields: ['offset', 'code'] },
  };
  await runConsumer({
    consumer,
    name: 'node',
    logger,
    onClose,
    topic,
    fromBeginning: false,
    run: {
      eachBatch: async ({ batch, heartbeat }) => {
        // Undecodable records are in push.dlq before any record is delivered: a dead letter that
        // cannot be written fails the batch, which is fetched again, with nothing delivered twice.
        const { decoded } = await decodeOrDeadLetter(sink, 'NodeDelivery', batch.topic, batch.partition, batch.messages);
        for (const { record } of decoded) deps.deliver(record);
        await heartbeat();
      },
    },
  });
  await withTimeout(joined, 60_000, 'joining the node consumer group');
}

async function skipToEnd(kafka: Kafka, groupId: string, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.setOffsets({ groupId, topic, partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })) });
  } finally {
    await admin.disconnect();
  }
}
