import { PushError } from '../platform/errors.js';

export interface WriteBatcherOptions {
  /** How long the first item of a batch waits for company. Default 2 ms. */
  lingerMs?: number;
  /** Items in one write at most. Default 500. */
  maxBatch?: number;
  /** Weighed bytes in one write at most. Default 4 MiB. */
  maxBatchBytes?: number;
  /** Writes in flight at once. Default 4. */
  concurrency?: number;
  /** Items waiting (queued plus in flight) before add() refuses with 503. Default 20000. */
  maxQueued?: number;
  /** What the store is called in errors ("the message store"). */
  what?: string;
}

export interface WriteBatcher<T, R = void> {
  /** Resolves with the item's result once its batch is written; rejects (503, retriable) when it is not. */
  add(item: T): Promise<R>;
  close(): Promise<void>;
}

interface Waiter<T, R> {
  item: T;
  bytes: number;
  resolve: (r: R) => void;
  reject: (err: unknown) => void;
}

/**
 * Gathers the items of concurrent callers (one event-loop turn, or up to
 * `lingerMs`) into one write: one insertMany per batch instead of one write
 * per item. `write` answers one result per item, in order (or nothing, for
 * writes without a result). Bounded by count and bytes per batch, by writes in
 * flight and by items waiting.
 */
export function createWriteBatcher<T, R = void>(
  write: (items: T[]) => Promise<readonly R[] | void>,
  weigh: (item: T) => number,
  opts: WriteBatcherOptions = {},
): WriteBatcher<T, R> {
  const { lingerMs = 2, maxBatch = 500, maxBatchBytes = 4 * 1024 * 1024, concurrency = 4, maxQueued = 20_000, what = 'the store' } = opts;
  let queue: Waiter<T, R>[] = [];
  let queuedBytes = 0;
  let waiting = 0;
  let inFlight = 0;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  const running = new Set<Promise<void>>();

  const take = (): Waiter<T, R>[] => {
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
      const run = write(batch.map((w) => w.item))
        .then(
          (results) => batch.forEach((w, i) => w.resolve((results as readonly R[] | undefined)?.[i] as R)),
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
    add(item) {
      if (closed) return Promise.reject(new PushError('SHUTTING_DOWN', `${what} is closing`, { status: 503, retriable: true }));
      if (waiting >= maxQueued)
        return Promise.reject(new PushError('OVERLOADED', `too many writes waiting for ${what}; retry shortly`, { status: 503, retriable: true }));
      const bytes = weigh(item);
      waiting++;
      return new Promise<R>((resolve, reject) => {
        queue.push({ item, bytes, resolve, reject });
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
