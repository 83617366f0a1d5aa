import { Counter, type Registry } from '../../common/src/metrics.js';

export type CollectorMetrics = ReturnType<typeof createCollectorMetrics>;

export function createCollectorMetrics(registry: Registry) {
  const counter = (name: string, help: string, labelNames: string[] = []) =>
    new Counter({ name, help, labelNames, registers: [registry] });
  return {
    received: counter('push_messages_received_total', 'Submissions received, by source and outcome', ['source', 'outcome']),
    stored: counter('push_messages_stored_total', 'Persistent messages stored in MongoDB'),
    published: counter('push_ingest_records_published_total', 'Ingest records published to push.ingest'),
    deferred: counter('push_messages_deferred_total', 'Stored messages whose publish was left to the outbox'),
    outboxRepublished: counter('push_outbox_republished_total', 'Messages republished by the outbox sweeper'),
    duplicates: counter('push_messages_duplicate_total', 'Submissions answered from an idempotency key'),
    deadLettered: counter('push_dead_letters_total', 'Records sent to push.dlq, by reason', ['code']),
  };
}
