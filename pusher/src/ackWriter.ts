import type { DeliveryStore } from '../../store/deliveryStore.js';
import type { AckBatchEntry } from '../../store/deliveries.js';
import type { Logger } from '../../common/src/logger.js';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
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
export function createAckWriter(deps: AckWriterDeps) {
  const { store, logger, publisher, topic, nodeId, flushMs = 100, maxPending = 100_000, maxPendingPerDevice = 5000 } = deps;
  let pending = new Map<string, AckBatchEntry>();
  let size = 0;
  let flushing: Promise<void> | undefined;

  const announce = (stored: { app: string; user: string; device: string; ids: string[] }[]) => {
    if (stored.length === 0) return;
    const at = Date.now();
    const messages = [];
    for (const { app, user, device, ids } of stored) {
      for (let i = 0; i < ids.length; i += MAX_IDS_PER_RECORD) {
        const rec = encodeRecord('Ack', { app, user, device, ids: ids.slice(i, i + MAX_IDS_PER_RECORD), nodeId, at });
        messages.push({ key: userRecordKey(app, user), value: rec.value, headers: rec.headers });
      }
    }
    publisher.publish(topic, messages).then(
      () => deps.onPublished?.('published', messages.length),
      (err: Error) => {
        deps.onPublished?.('failed', messages.length);
        logger.warn({ err: err.message, records: messages.length }, 'ack records not published to push.acks');
      },
    );
  };

  // A failed write is kept and retried with the next flushes (a store restart fails each pooled
  // connection once: FerretDB on PostgreSQL answers 57P01). The device was told nothing, and an ack
  // dropped here came back as a redelivery after its next reconnect. Acks are inserts of fixed ids,
  // so a retry of a write that did land is ignored. Bounded: MAX_WRITE_TRIES, and the ids count in `size`.
  let retry: { entries: AckBatchEntry[]; ids: number; tries: number } | undefined;
  const flush = async () => {
    if (flushing || size === 0) return;
    const again = retry;
    const entries = [...(again?.entries ?? []), ...pending.values()];
    const ids = size;
    pending = new Map();
    retry = undefined;
    flushing = (async () => {
      try {
        await store.ack(entries);
      } catch (err) {
        const tries = (again?.tries ?? 0) + 1;
        if (tries >= MAX_WRITE_TRIES) {
          size -= ids;
          logger.warn({ err: (err as Error).message, devices: entries.length, tries }, 'ack write failed; given up (the messages come again on the next connect)');
        } else {
          retry = { entries, ids, tries };
          logger.warn({ err: (err as Error).message, devices: entries.length, tries }, 'ack write failed; retrying');
        }
        return;
      }
      size -= ids;
      announce(entries);
    })();
    await flushing;
    flushing = undefined;
  };
  // A timer only while acks wait: an idle pusher does not wake up for nothing.
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      void flush().then(() => size > 0 && schedule());
    }, retry ? Math.min(flushMs * 2 ** retry.tries, MAX_RETRY_DELAY_MS) : flushMs);
  };

  return {
    /**
     * Queues acks, each with its message's expiry (the ack is kept as long);
     * false when the writer, or this device's share of it, is full (the client should retry).
     */
    add(app: string, user: string, device: string, ids: string[], expiresAt: number[]): boolean {
      if (size + ids.length > maxPending) return false;
      const key = `${app}|${user}|${device}`;
      let entry = pending.get(key);
      if (entry && entry.ids.length + ids.length > maxPendingPerDevice) return false;
      if (!entry) pending.set(key, (entry = { app, user, device, ids: [], expiresAt: [] }));
      entry.ids.push(...ids);
      entry.expiresAt.push(...expiresAt);
      size += ids.length;
      schedule();
      return true;
    },
    /** Stops the timer and writes what is queued; call before the publisher closes. */
    async close() {
      clearTimeout(timer);
      await flushing;
      await flush();
    },
  };
}
