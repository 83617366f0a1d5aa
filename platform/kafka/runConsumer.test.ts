import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Consumer } from 'kafkajs';
import type { Closer } from '../lifecycle.js';
import type { Logger } from '../logger.js';
import { runConsumer } from './runConsumer.js';

/** A consumer that records the calls made on it; no Kafka. */
function fakeConsumer(calls: string[]): Consumer {
  return {
    connect: async () => void calls.push('connect'),
    subscribe: async (s: { topic: string; fromBeginning: boolean }) => void calls.push(`subscribe ${s.topic} ${s.fromBeginning}`),
    run: async () => void calls.push('run'),
    disconnect: async () => void calls.push('disconnect'),
    on: (event: string) => void calls.push(`on ${event}`),
    events: { CRASH: 'consumer.crash' },
  } as unknown as Consumer;
}

test('connects, registers its closers, watches for a crash, subscribes and runs, in that order', async () => {
  const calls: string[] = [];
  const closers: { name: string; close: Closer }[] = [];
  await runConsumer({
    consumer: fakeConsumer(calls),
    name: 'ingest',
    logger: {} as Logger,
    onClose: (name, close) => void closers.push({ name, close }),
    topic: 'push.ingest',
    fromBeginning: true,
    beforeLeaving: [{ name: 'commits', close: () => void calls.push('settle') }],
    run: {},
  });
  assert.deepEqual(calls, ['connect', 'on consumer.crash', 'subscribe push.ingest true', 'run']);
  assert.deepEqual(
    closers.map((c) => c.name),
    ['consumer', 'commits', 'ingest-consumer-watch'],
  );
  // Closers run in reverse: the watch, then what must land before leaving, then the leave itself.
  for (const c of closers.reverse()) await c.close();
  assert.deepEqual(calls.slice(4), ['settle', 'disconnect']);
});

test('leaves the way the caller says, under its name', async () => {
  const calls: string[] = [];
  const names: string[] = [];
  await runConsumer({
    consumer: fakeConsumer(calls),
    name: 'events',
    logger: {} as Logger,
    onClose: (name) => void names.push(name),
    topic: 'push.events',
    fromBeginning: false,
    leave: { name: 'events-consumer', close: () => undefined },
    run: {},
  });
  assert.deepEqual(names, ['events-consumer', 'events-consumer-watch']);
  assert.ok(calls.includes('subscribe push.events false'));
});
