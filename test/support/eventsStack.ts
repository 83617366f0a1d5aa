import { after, before } from 'node:test';
import { createAppStore } from '../../store/apps.js';
import { topicNames, type Topics } from '../../protocol/topics.js';
import { decodeRecord } from '../../schemas/registry.js';
import type { DeadLetter } from '../../schemas/types.js';
import { startStack, type TestStack } from './stack.js';
import { topicReader } from './topicReader.js';
import { kafkaTools } from './eventRecords.js';

export interface EventsStack {
  s: TestStack;
  topics: Topics;
  kafka: Awaited<ReturnType<typeof kafkaTools>>;
  /** Every record of the stack's push.dlq so far, decoded (filled as they arrive). */
  letters: DeadLetter[];
}

/**
 * Registers before/after hooks in the calling suite for a stack that push.events tests share:
 * a producer and admin on the broker, and a reader of the stack's dead letters. With
 * `signingSecret`, the stack's app gets it before the collector first looks the app up.
 * The returned object is filled in by the `before` hook.
 */
export function useEventsStack(clientId: string, { signingSecret }: { signingSecret?: string } = {}): EventsStack {
  const bed = {} as EventsStack;
  const reader = topicReader(clientId);
  before(async () => {
    bed.s = await startStack();
    bed.topics = topicNames(bed.s.env.KAFKA_TOPIC_PREFIX);
    if (signingSecret) {
      await createAppStore({ db: bed.s.mongo.db(bed.s.env.MONGO_DB) }).upsert({ id: bed.s.app, apiKeys: [bed.s.apiKey], eventSigningSecrets: [signingSecret] });
    }
    bed.kafka = await kafkaTools(clientId);
    bed.letters = await reader.follow(bed.topics.dlq, (v, h) => decodeRecord('DeadLetter', v, h));
  });
  after(async () => {
    await reader.close();
    await bed.kafka?.close();
    await bed.s?.stop();
  });
  return bed;
}
