import type { Consumer, Kafka } from 'kafkajs';
import type { Logger } from '../../platform/logger.js';
import { commitThrough } from '../../platform/kafka/kafka.js';
import { decodeRecord, RecordDecodeError } from '../../schemas/registry.js';
import type { DeadLetter } from '../../schemas/types.js';
import type { DlqStore } from './dlqStore.js';

/** Consumer group that indexes push.dlq for the admin API (prefixed like every group). */
export const dlqIndexGroup = (prefix: string) => `${prefix}push-dlq-index`;

/**
 * Reads push.dlq into the `deadLetters` collection so operators can list,
 * show, replay and purge dead letters by id. A DLQ record that is itself
 * unreadable is logged and skipped (there is no dead letter queue for the
 * dead letter queue); offsets are committed after each stored batch.
 */
export async function startDlqIndex({
  kafka,
  store,
  topic,
  groupId,
  logger,
}: {
  kafka: Kafka;
  store: DlqStore;
  topic: string;
  groupId: string;
  logger: Logger;
}): Promise<Consumer> {
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 30_000,
    maxBytesPerPartition: 1 << 20,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    eachBatch: async ({ batch, resolveOffset, heartbeat }) => {
      const entries: { partition: number; offset: string; letter: DeadLetter }[] = [];
      for (const m of batch.messages) {
        try {
          entries.push({ partition: batch.partition, offset: m.offset, letter: decodeRecord('DeadLetter', m.value, m.headers) });
        } catch (err) {
          if (!(err instanceof RecordDecodeError)) throw err;
          logger.warn({ partition: batch.partition, offset: m.offset, code: err.code }, 'unreadable dead letter skipped');
        }
      }
      await store.add(entries);
      const last = batch.messages.at(-1);
      if (last) {
        resolveOffset(last.offset);
        await commitThrough(consumer, batch.topic, batch.partition, last.offset);
      }
      await heartbeat();
    },
  });
  return consumer;
}
