import type { Kafka } from 'kafkajs';
import type { Logger } from '../../platform/logger.js';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import type { ServiceDeps } from '../../platform/lifecycle.js';
import { withTimeout } from '../../platform/errors.js';
import { sendToDeadLetters } from '../../platform/kafka/deadLetter.js';
import { exitWhenConsumerGivesUp } from '../../platform/kafka/exitWhenConsumerGivesUp.js';
import { decodeRecord, RecordDecodeError } from '../../schemas/registry.js';
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
  await consumer.connect();
  onClose('consumer', () => consumer.disconnect());
  exitWhenConsumerGivesUp(consumer, logger, 'node', onClose);
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.subscribe({ topic, fromBeginning: false });
  await consumer.run({
    eachBatch: async ({ batch, heartbeat }) => {
      for (const message of batch.messages) {
        try {
          deps.deliver(decodeRecord('NodeDelivery', message.value, message.headers));
        } catch (err) {
          if (!(err instanceof RecordDecodeError)) throw err;
          logger.warn({ offset: message.offset, code: err.code }, 'undecodable node record sent to dead letters');
          deps.onDeadLetter(err.code);
          await sendToDeadLetters(deps.dlq, { topic: batch.topic, partition: batch.partition, message }, err.code, err.message, groupId, deps.dlqTopic);
        }
      }
      await heartbeat();
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
