import type { DeliveryStore } from '../../store/deliveryStore.js';
import type { AckBatchEntry } from '../../store/deliveries.js';
import type { Logger } from '../../platform/logger.js';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { encodeRecord } from '../../schemas/registry.js';
import { userRecordKey } from '../../protocol/recordKeys.js';

/** Ids in one `Ack` record on push.acks: keeps records small whatever a device acked in one flush. */
const MAX_IDS_PER_RECORD = 500;
/** Writes of one batch of acks before it is given up. */
const MAX_WRITE_TRIES = 6;
/** The longest wait before a failed batch is written again. */
const MAX_RETRY_DELAY_MS = 2000;

export interface AckWriterDeps {
  store: Pick<DeliveryStore, 'ack'>;
  logger: Logger;
  /** Where stored acks are announced (`push.acks`). */
  publisher: BatchPublisher;
  topic: string;
  nodeId: string;
  /** Counts `Ack` records by outcome (`published`, `failed`). */
  onPublished?: (outcome: 'published' | 'failed', records: number) => void;
  /** How often queued acks are written. Default 100 ms. */
  flushMs?: number;
  /** Ids waiting to be written before add() refuses. Default 100000. */
  maxPending?: number;
  /** Ids of one device waiting to be written before add() refuses that device (PUSHER_ACK_QUOTA). Default 5000. */
  maxPendingPerDevice?: number;
}

/**
 * Batches the ACKs of every connection into one store call every `flushMs`
 * (insert-only records, so one insertMany per 1,000 ids). Bounded: past
 * `maxPending` ids the caller is told to refuse further acks for now, and
 * past `maxPendingPerDevice` ids of one device that device is refused, so one
 * busy socket cannot take the whole queue from every other client.
 * Once a device's acks are stored, they are published to `push.acks` as
 * `Ack` records, one produce per flush through the batch publisher, whose
 * queue bounds them; MongoDB stays the source of truth, so a record that
 * Kafka refuses is logged and counted, not retried.
 */
export class AckWriter {
  private readonly flushMs: number;
  private readonly maxPending: number;
  private readonly maxPendingPerDevice: number;
  private pending = new Map<string, AckBatchEntry>();
  /** Ids waiting: queued and being written (a failed batch counts until it is given up). */
  private size = 0;
  private flushing: Promise<void> | undefined;
  /**
   * A failed write is kept and retried with the next flushes (a store restart fails each pooled
   * connection once: FerretDB on PostgreSQL answers 57P01). The device was told nothing, and an ack
   * dropped here came back as a redelivery after its next reconnect. Acks are inserts of fixed ids,
   * so a retry of a write that did land is ignored. Bounded: MAX_WRITE_TRIES, and the ids count in `size`.
   */
  private retry: { entries: AckBatchEntry[]; ids: number; tries: number } | undefined;
  /** A timer only while acks wait: an idle pusher does not wake up for nothing. */
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: AckWriterDeps) {
    this.flushMs = deps.flushMs ?? 100;
    this.maxPending = deps.maxPending ?? 100_000;
    this.maxPendingPerDevice = deps.maxPendingPerDevice ?? 5000;
  }

  /**
   * Queues acks, each with its message's expiry (the ack is kept as long);
   * false when the writer, or this device's share of it, is full (the client should retry).
   */
  add(app: string, user: string, device: string, ids: string[], expiresAt: number[]): boolean {
    if (this.size + ids.length > this.maxPending) return false;
    const key = `${app}|${user}|${device}`;
    let entry = this.pending.get(key);
    if (entry && entry.ids.length + ids.length > this.maxPendingPerDevice) return false;
    if (!entry) this.pending.set(key, (entry = { app, user, device, ids: [], expiresAt: [] }));
    entry.ids.push(...ids);
    entry.expiresAt.push(...expiresAt);
    this.size += ids.length;
    this.schedule();
    return true;
  }

  /** Stops the timer and writes what is queued; call before the publisher closes. */
  async close(): Promise<void> {
    clearTimeout(this.timer);
    await this.flushing;
    await this.flush();
  }

  private schedule(): void {
    const delay = this.retry ? Math.min(this.flushMs * 2 ** this.retry.tries, MAX_RETRY_DELAY_MS) : this.flushMs;
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      void this.flush().then(() => this.size > 0 && this.schedule());
    }, delay);
  }

  private async flush(): Promise<void> {
    if (this.flushing || this.size === 0) return;
    const again = this.retry;
    const entries = [...(again?.entries ?? []), ...this.pending.values()];
    const ids = this.size;
    this.pending = new Map();
    this.retry = undefined;
    this.flushing = this.write(entries, ids, again?.tries ?? 0);
    await this.flushing;
    this.flushing = undefined;
  }

  /** Writes a batch of `ids` acks (tried `tries` times before); announces them once stored. */
  private async write(entries: AckBatchEntry[], ids: number, tries: number): Promise<void> {
    try {
      await this.deps.store.ack(entries);
    } catch (err) {
      const attempts = tries + 1;
      if (attempts >= MAX_WRITE_TRIES) {
        this.size -= ids;
        this.deps.logger.warn(
          { err: (err as Error).message, devices: entries.length, tries: attempts },
          'ack write failed; given up (the messages come again on the next connect)',
        );
      } else {
        this.retry = { entries, ids, tries: attempts };
        this.deps.logger.warn({ err: (err as Error).message, devices: entries.length, tries: attempts }, 'ack write failed; retrying');
      }
      return;
    }
    this.size -= ids;
    this.announce(entries);
  }

  private announce(stored: AckBatchEntry[]): void {
    const messages = ackRecords(stored, this.deps.nodeId, Date.now());
    if (messages.length === 0) return;
    const { publisher, topic, logger } = this.deps;
    publisher.publish(topic, messages).then(
      () => this.deps.onPublished?.('published', messages.length),
      (err: Error) => {
        this.deps.onPublished?.('failed', messages.length);
        logger.warn({ err: err.message, records: messages.length }, 'ack records not published to push.acks');
      },
    );
  }
}

/** The `Ack` records announcing stored acks, at most MAX_IDS_PER_RECORD ids each, keyed by user. */
function ackRecords(stored: { app: string; user: string; device: string; ids: string[] }[], nodeId: string, at: number) {
  const messages = [];
  for (const { app, user, device, ids } of stored) {
    for (let i = 0; i < ids.length; i += MAX_IDS_PER_RECORD) {
      const rec = encodeRecord('Ack', { app, user, device, ids: ids.slice(i, i + MAX_IDS_PER_RECORD), nodeId, at });
      messages.push({ key: userRecordKey(app, user), value: rec.value, headers: rec.headers });
    }
  }
  return messages;
}

export function createAckWriter(deps: AckWriterDeps): AckWriter {
  return new AckWriter(deps);
}
