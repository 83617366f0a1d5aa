import { Counter, type Registry } from '../../platform/metrics.js';

export type CollectorMetrics = ReturnType<typeof createCollectorMetrics>;

export function createCollectorMetrics(registry: Registry) {
  const counter = (name: string, help: string, labelNames: string[] = []) => new Counter({ name, help, labelNames, registers: [registry] });
  const received = counter('push_messages_received_total', 'Submissions received, by source and outcome', ['source', 'outcome']);
  // Bound once per outcome: a label lookup on every request is measurable at thousands per second.
  const http = new Map<string, ReturnType<typeof received.labels>>();
  return {
    received,
    receivedHttp(outcome: string) {
      let child = http.get(outcome);
      if (!child) http.set(outcome, (child = received.labels('http', outcome)));
      return child;
    },
    stored: counter('push_messages_stored_total', 'Persistent messages stored in MongoDB'),
    published: counter('push_ingest_records_published_total', 'Ingest records published to push.ingest'),
    deferred: counter('push_messages_deferred_total', 'Stored messages whose publish was left to the outbox'),
    outboxRepublished: counter('push_outbox_republished_total', 'Messages republished by the outbox sweeper'),
    duplicates: counter('push_messages_duplicate_total', 'Submissions answered from an idempotency key'),
    deadLettered: counter('push_dead_letters_total', 'Records sent to push.dlq, by reason', ['code']),
    // push.events: an app over its rate limit is waited for, an infrastructure failure retried, then the partition paused.
    eventsThrottled: counter('push_events_throttled_total', 'Waits of the push.events consumer for an app over its rate limit'),
    eventsRetried: counter('push_events_retries_total', 'Retries of push.events records after an infrastructure failure'),
    eventsPaused: counter('push_events_paused_total', 'push.events partitions paused after their retries were used up'),
  };
}
