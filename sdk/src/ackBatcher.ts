/**
 * Collects message ids to acknowledge and sends them in batches: when
 * `batchMax` ids are waiting, or `batchMs` after the first one arrived.
 * While there is no connection (`send` returns false) ids stay queued and go
 * out on the next `flush()`, which the client calls after reconnecting.
 */
export interface AckBatcherConfig {
  batchMs: number;
  batchMax: number;
  /** Sends one ack frame; false when there is no open connection (the ids are kept). */
  send(ids: string[]): boolean;
}

export interface AckBatcher {
  add(id: string): void;
  /** Sends everything queued now, in frames of at most `batchMax` ids. */
  flush(): void;
  /** Ids waiting to be sent. */
  readonly pending: number;
  /** Drops the queue and the timer. */
  clear(): void;
}

export function createAckBatcher({ batchMs, batchMax, send }: AckBatcherConfig): AckBatcher {
  // A Set: the same id acked twice before a flush goes out once.
  const queue = new Set<string>();
  let timer: ReturnType<typeof setTimeout> | undefined;

  const stopTimer = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
  };

  const flush = () => {
    stopTimer();
    while (queue.size > 0) {
      const ids: string[] = [];
      for (const id of queue) {
        ids.push(id);
        if (ids.length === batchMax) break;
      }
      if (!send(ids)) return;
      for (const id of ids) queue.delete(id);
    }
  };

  return {
    add(id) {
      queue.add(id);
      if (queue.size >= batchMax) flush();
      else if (timer === undefined) timer = setTimeout(flush, batchMs);
    },
    flush,
    get pending() {
      return queue.size;
    },
    clear() {
      stopTimer();
      queue.clear();
    },
  };
}
