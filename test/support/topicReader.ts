import { pino } from 'pino';
import type { Consumer } from 'kafkajs';
import { createKafka } from '../../platform/kafka/kafka.js';
import { stack as infra, uniqueId } from './env.js';

/**
 * Reads topics from their start into arrays, decoded, each with a consumer
 * group of its own; `close()` disconnects them all (call it in `after`).
 */
export function topicReader(clientId: string) {
  const consumers: Consumer[] = [];
  return {
    async follow<T>(topic: string, decode: (value: Buffer | null, headers: any) => T): Promise<T[]> {
      const kafka = createKafka({ clientId, brokers: infra.kafkaBrokers, logger: pino({ level: 'silent' }) });
      const consumer = kafka.consumer({ groupId: uniqueId('reader') });
      consumers.push(consumer);
      const out: T[] = [];
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      await consumer.run({ eachMessage: async ({ message }) => void out.push(decode(message.value, message.headers)) });
      return out;
    },
    async close(): Promise<void> {
      await Promise.all(consumers.map((c) => c.disconnect()));
    },
  };
}
