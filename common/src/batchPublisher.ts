import type { Message, Producer } from 'kafkajs';
import { PushError, withTimeout } from './errors.js';

export interface BatchPublisherOptions {
  producer: Producer;
  /** Records gathered into one produce request at most. Default 500. */
  maxBatch?: number;
  /** How long the first record of a batch waits for company. Default 2 ms. */
  lingerMs?: number;
  /** Records waiting (queued plus in flight) before publish() refuses with 503. Default 20000. */
  maxQueued?: number;
  /** A produce that takes longer fails the waiting callers. Default 5000 ms. */
  timeoutMs?: number;
}

interface Pending {
  topic: string;
  messages: Message[];
  resolve: () => void;
  reject: (err: unknown) => void;
}

export interface BatchPublisher {
  publish(topic: string, messages: Message[]): Promise<void>;
  queued(): number;
  /** Sends what is queued and stops accepting. */
  close(): Promise<void>;
}

/**
 * Coalesces many small publishes into few produce requests (one in flight at
 * a time, which also keeps per-key order), with a hard bound on what waits.
 */
export function createBatchPublisher(opts: BatchPublisherOptions): BatchPublisher {
  const { producer, maxBatch = 500, lingerMs = 2, maxQueued = 20_000, timeoutMs = 5000 } = opts;
  let queue: Pending[] = [];
  let queuedRecords = 0;
  let inFlight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  const flush = async (): Promise<void> => {
    timer = undefined;
    if (inFlight || queue.length === 0) return;
    const batch: Pending[] = [];
    let count = 0;
    while (queue.length > 0 && (batch.length === 0 || count + queue[0]!.messages.length <= maxBatch)) {
      const p = queue.shift()!;
      batch.push(p);
      count += p.messages.length;
    }
    const byTopic = new Map<string, Message[]>();
    for (const p of batch) {
      const list = byTopic.get(p.topic);
      if (list) for (const m of p.messages) list.push(m);
      else byTopic.set(p.topic, p.messages.slice());
    }
    inFlight = (async () => {
      try {
        await withTimeout(
          producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) }),
          timeoutMs,
          'kafka produce',
        );
        for (const p of batch) p.resolve();
      } catch (err) {
        const e = new PushError('KAFKA_UNAVAILABLE', `cannot publish to Kafka: ${(err as Error).message}`, { status: 503, retriable: true, cause: err });
        for (const p of batch) p.reject(e);
      } finally {
        queuedRecords -= count;
        inFlight = undefined;
      }
    })();
    await inFlight;
    if (queue.length > 0) void flush();
  };

  return {
    publish(topic, messages) {
      if (closed) return Promise.reject(new PushError('SHUTTING_DOWN', 'publisher is closed', { status: 503, retriable: true }));
      if (queuedRecords + messages.length > maxQueued) {
        return Promise.reject(new PushError('OVERLOADED', 'too many records waiting for Kafka', { status: 503, retriable: true }));
      }
      queuedRecords += messages.length;
      return new Promise<void>((resolve, reject) => {
        queue.push({ topic, messages, resolve, reject });
        if (queuedRecords >= maxBatch) void flush();
        else timer ??= setTimeout(() => void flush(), lingerMs);
      });
    },
    queued: () => queuedRecords,
    async close() {
      closed = true;
      if (timer) clearTimeout(timer);
      while (queue.length > 0 || inFlight) {
        if (inFlight) await inFlight;
        else await flush();
      }
      queue = [];
    },
  };
}
