import { pino } from 'pino';
import { createKafka } from '../../platform/kafka/kafka.js';
import { loadCommonConfig } from '../../platform/config.js';

if (process.env.PUSH_TEST_UNIT === '1') {
  throw new Error(
    'test/support/env.ts needs the Kafka/Redis/MongoDB servers, but this is the unit run (npm run test:unit): ' +
      'name the test file *.int.test.ts or move it under test/',
  );
}

/** Addresses of the shared local stack that `npm test` brought up (read the way a development-mode service reads them). */
export const stack = loadCommonConfig({ PUSH_MODE: 'development', ...process.env });

export const uniqueId = (prefix: string): string => `${prefix}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;

/**
 * Deletes the topics of one test stack (those named with its prefix), so the
 * shared broker does not accumulate thousands of partitions over a run.
 */
export async function dropTopics(prefix: string): Promise<void> {
  const admin = createKafka({ clientId: 'test-cleanup', brokers: stack.kafkaBrokers, logger: pino({ level: 'silent' }) }).admin();
  await admin.connect();
  try {
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(prefix));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10_000 });
  } finally {
    await admin.disconnect();
  }
}
