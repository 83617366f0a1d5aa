import type { Producer } from 'kafkajs';
import type { Registry } from 'prom-client';
import { createBatchPublisher, type BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { registerPublisherGauges } from '../../platform/kafka/publisherGauges.js';
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
  registerPublisherGauges(registry, { ...publishers });
  return publishers;
}
