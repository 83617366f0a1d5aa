import { Gauge, type Registry } from '../metrics.js';
import type { BatchPublisher } from './batchPublisher.js';

/**
 * The queue gauges of a service's batch publishers: `push_publish_queue_depth` (records) and
 * `push_publish_queue_bytes`, queued and in flight. One publisher is reported unlabelled;
 * several, by name in the `topic` label.
 */
export function registerPublisherGauges(registry: Registry, publishers: BatchPublisher | Record<string, BatchPublisher>): void {
  const named = 'publish' in publishers && typeof publishers.publish === 'function' ? undefined : (publishers as Record<string, BatchPublisher>);
  const single = named ? undefined : (publishers as BatchPublisher);
  const gauge = (name: string, help: string, read: (p: BatchPublisher) => number) =>
    new Gauge({
      name,
      help,
      labelNames: named ? ['topic'] : [],
      registers: [registry],
      collect() {
        if (single) this.set(read(single));
        else for (const [topic, p] of Object.entries(named!)) this.set({ topic }, read(p));
      },
    });
  gauge('push_publish_queue_depth', 'Records waiting in the Kafka batch publisher (queued and in flight)', (p) => p.queued());
  gauge('push_publish_queue_bytes', 'Bytes of records waiting in the Kafka batch publisher (queued and in flight)', (p) => p.queuedBytes?.() ?? 0);
}
