import type { MessageStore } from '../../common/src/messageStore.js';
import type { Logger } from '../../common/src/logger.js';

/**
 * Batches ACKs per device into one write every `flushMs`. Bounded: past
 * `maxPending` ids the caller is told to refuse further acks for now.
 */
export function createAckWriter(store: MessageStore, logger: Logger, { flushMs = 100, maxPending = 100_000 } = {}) {
  let pending = new Map<string, { app: string; user: string; device: string; ids: string[] }>();
  let size = 0;
  let flushing: Promise<void> | undefined;

  const flush = async () => {
    if (flushing || size === 0) return;
    const batch = pending;
    pending = new Map();
    size = 0;
    flushing = (async () => {
      for (const { app, user, device, ids } of batch.values()) {
        await store.ack(app, user, device, ids).catch((err: Error) => logger.warn({ err: err.message, app, user, device }, 'ack write failed'));
      }
    })();
    await flushing;
    flushing = undefined;
  };
  const timer = setInterval(() => void flush(), flushMs);

  return {
    /** Queues acks; false when the writer is saturated (the client should retry). */
    add(app: string, user: string, device: string, ids: string[]): boolean {
      if (size + ids.length > maxPending) return false;
      const key = `${app}|${user}|${device}`;
      let entry = pending.get(key);
      if (!entry) pending.set(key, (entry = { app, user, device, ids: [] }));
      entry.ids.push(...ids);
      size += ids.length;
      return true;
    },
    async close() {
      clearInterval(timer);
      await flushing;
      await flush();
    },
  };
}
