import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Producer } from 'kafkajs';
import { createBatchPublisher } from './batchPublisher.js';

/** A producer whose sends wait until released, so records stay queued. */
function heldProducer() {
  const waiting: (() => void)[] = [];
  const producer = { sendBatch: () => new Promise<void>((resolve) => waiting.push(resolve)) } as unknown as Producer;
  return { producer, releaseAll: () => waiting.splice(0).forEach((r) => r()) };
}

const records = (n: number) => Array.from({ length: n }, (_, i) => ({ key: `k${i}`, value: Buffer.from('v') }));

test('an owner over its share is told so by name, even when the whole queue is full as well', async () => {
  const { producer, releaseAll } = heldProducer();
  const pub = createBatchPublisher({ producer, maxQueued: 10, maxBatch: 1, maxOwnerShare: 0.5, lingerMs: 0 });
  const first = pub.publish('t', records(5), 'heavy');
  const other = pub.publish('t', records(1), 'light');
  // 5 waiting + 5 more is over heavy's share (5), and 5 + 1 + 5 is over the queue (10): the share answers.
  await assert.rejects(pub.publish('t', records(5), 'heavy'), (err: { code?: string; details?: unknown }) => {
    assert.equal(err.code, 'OVERLOADED');
    assert.deepEqual(err.details, { owner: 'heavy' });
    return true;
  });
  // An owner with nothing waiting meets only the queue's own bound.
  await assert.rejects(
    pub.publish('t', records(5), 'third'),
    (err: { code?: string; details?: unknown }) => err.code === 'OVERLOADED' && err.details === undefined,
  );
  const releasing = setInterval(releaseAll, 1);
  await Promise.all([first, other]);
  clearInterval(releasing);
  await pub.close();
});
