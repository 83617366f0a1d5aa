import type { Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import { createBatchPublisher, type BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { Gauge } from '../../platform/metrics.js';
import type { PusherConfig } from './config.js';

export interface PusherPublishers {
  upstream: BatchPublisher;
  acks: BatchPublisher;
  presence: BatchPublisher;
  dlq: BatchPublisher;
}

/**
 * One publisher per kind of record, each with its own byte budget (issue 12 #13): a burst of
 * large upstream frames fills only the upstream queue, never the acks' or presence's, and
 * every produce request stays under the broker's limit. Their queue depths are gauges.
 */
export function createPusherPublishers(producer: Producer, config: PusherConfig, registry: Registry): PusherPublishers {
  const publisherOf = (name: string, maxQueuedBytes: number, maxQueued = 10_000) =>
    createBatchPublisher({ producer, name, maxQueued, maxQueuedBytes, maxRequestBytes: config.kafkaMaxRequestBytes });
  const publishers: PusherPublishers = {
    upstream: publisherOf('upstream', config.upstreamQueueBytes),
    acks: publisherOf('ack', config.ackQueueBytes),
    presence: publisherOf('presence', config.presenceQueueBytes),
    dlq: publisherOf('dead-letter', 16 * 1024 * 1024, 1000),
  };
  new Gauge({
    name: 'push_publish_queue_depth',
    help: 'Records waiting in the Kafka batch publisher (queued and in flight)',
    labelNames: ['topic'],
    registers: [registry],
    collect() {
      for (const [topic, p] of Object.entries(publishers)) this.set({ topic }, p.queued());
    },
  });
  new Gauge({
    name: 'push_publish_queue_bytes',
    help: 'Bytes of records waiting in the Kafka batch publisher (queued and in flight)',
    labelNames: ['topic'],
    registers: [registry],
    collect() {
      for (const [topic, p] of Object.entries(publishers)) this.set({ topic }, p.queuedBytes?.() ?? 0);
    },
  });
  return publishers;
}
