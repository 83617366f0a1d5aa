import type { StoredMessage } from '../common/src/messageStore.js';
import { PushError } from '../common/src/errors.js';
import type { MessagesStore } from './messages.js';

export interface MessagesBatcherOptions {
  /** How long the first message of a batch waits for company. Default 2 ms. */
  lingerMs?: number;
  /** Messages in one store call at most. Default 500. */
  maxBatch?: number;
  /** Bytes (payloads plus a per-message allowance) in one store call at most. Default 4 MiB. */
  maxBatchBytes?: number;
  /** Store calls in flight at once. Default 4. */
  concurrency?: number;
  /** Messages waiting (queued plus in flight) before store() refuses with 503. Default 20000. */
  maxQueued?: number;
}

export interface MessagesBatcher {
  /** Resolves once the message and its outbox entry are durable; rejects (503, retriable) when not. */
  store(msg: StoredMessage): Promise<void>;
  close(): Promise<void>;
}

/** What a message weighs in a batch besides its payload (ids, users, dates, field names). */
const MESSAGE_OVERHEAD = 256;

interface Waiter {
  msg: StoredMessage;
  bytes: number;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Gathers the messages of concurrent submissions (one event-loop turn, or up
 * to `lingerMs`) into one storeMessages call: one insertMany and one outbox
 * write per batch instead of two writes per message. Bounded by count and
 * bytes per batch, by batches in flight and by messages waiting.
 */
export function createMessagesBatcher(store: MessagesStore, opts: MessagesBatcherOptions = {}): MessagesBatcher {
  const { lingerMs = 2, maxBatch = 500, maxBatchBytes = 4 * 1024 * 1024, concurrency = 4, maxQueued = 20_000 } = opts;
  let queue: Waiter[] = [];
  let queuedBytes = 0;
  let waiting = 0;
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const running = new Set<Promise<void>>();

  const take = (): Waiter[] => {
    let bytes = 0;
    let n = 0;
    while (n < queue.length && n < maxBatch && (n === 0 || bytes + queue[n]!.bytes <= maxBatchBytes)) bytes += queue[n++]!.bytes;
    const batch = queue.slice(0, n);
    queue = queue.slice(n);
    queuedBytes -= bytes;
    return batch;
  };

  const flush = (): void => {
    timer = undefined;
    while (queue.length > 0 && inFlight < concurrency) {
      const batch = take();
      inFlight++;
      const run = store
        .storeMessages(batch.map((w) => w.msg))
        .then(
          () => batch.forEach((w) => w.resolve()),
          (err: unknown) => batch.forEach((w) => w.reject(err)),
        )
        .finally(() => {
          inFlight--;
          waiting -= batch.length;
          running.delete(run);
          if (queue.length > 0) schedule();
        });
      running.add(run);
    }
  };
  const schedule = () => {
    if (queuedBytes >= maxBatchBytes || queue.length >= maxBatch) flush();
    else timer ??= setTimeout(flush, lingerMs);
  };

  return {
    store(msg) {
      if (closed) return Promise.reject(new PushError('SHUTTING_DOWN', 'the message store is closing', { status: 503, retriable: true }));
      if (waiting >= maxQueued) return Promise.reject(new PushError('OVERLOADED', 'too many messages waiting for the store; retry shortly', { status: 503, retriable: true }));
      const bytes = Buffer.byteLength(msg.payload) + MESSAGE_OVERHEAD + (msg.users?.length ?? 0) * 16;
      waiting++;
      return new Promise<void>((resolve, reject) => {
        queue.push({ msg, bytes, resolve, reject });
        queuedBytes += bytes;
        schedule();
      });
    },
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      while (queue.length > 0 || running.size > 0) {
        flush();
        await Promise.race(running);
      }
    },
  };
}
