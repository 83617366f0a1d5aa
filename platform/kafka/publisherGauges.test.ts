import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Registry } from 'prom-client';
import type { BatchPublisher } from './batchPublisher.js';
import { registerPublisherGauges } from './publisherGauges.js';

const fake = (records: number, bytes: number) =>
  ({ publish: async () => undefined, queued: () => records, queuedBytes: () => bytes }) as unknown as BatchPublisher;

test('one publisher is reported unlabelled; several by name in the topic label', async () => {
  const one = new Registry();
  registerPublisherGauges(one, fake(3, 300));
  const text = await one.metrics();
  assert.match(text, /^push_publish_queue_depth 3$/m);
  assert.match(text, /^push_publish_queue_bytes 300$/m);

  const many = new Registry();
  registerPublisherGauges(many, { acks: fake(1, 10), upstream: fake(2, 20) });
  const labelled = await many.metrics();
  assert.match(labelled, /^push_publish_queue_depth\{topic="acks"\} 1$/m);
  assert.match(labelled, /^push_publish_queue_bytes\{topic="upstream"\} 20$/m);
});
