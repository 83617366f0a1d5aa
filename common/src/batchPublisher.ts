import type { Message, Producer } from 'kafkajs';
import { PushError, withTimeout } from './errors.js';

export interface BatchPublisherOptions {
  producer: Producer;
  /** Names this publisher in its refusals (e.g. "upstream"). Default "kafka". */
  name?: string;
  /** Records gathered into one produce request at most. Default 500. */
  maxBatch?: number;
  /**
   * Bytes of records in one produce request at most. Kafka refuses a partition's
   * batch over its `message.max.bytes` (1 MiB by default) and drops the connection
   * on a request over `socket.request.max.bytes`, so big publishes are split.
   * A single record larger than this can never be sent and is refused. Default 512 KiB.
   */
  maxRequestBytes?: number;
  /** How long the first record of a batch waits for company. Default 2 ms. */
  lingerMs?: number;
  /** Records waiting (queued plus in flight) before publish() refuses with 503. Default 20000. */
  maxQueued?: number;
  /** Bytes of records waiting (queued plus in flight) before publish() refuses with 503. Default 64 MiB. */
  maxQueuedBytes?: number;
  /** A produce that takes longer fails the waiting callers. Default 5000 ms. */
  timeoutMs?: number;
  /**
   * Share (0-1] of `maxQueued` and `maxQueuedBytes` one owner (the `owner` of publish(),
   * e.g. an app) may hold while it has anything else waiting: one tenant's fan-outs
   * cannot fill the queue and have every other tenant refused. An owner with nothing
   * waiting may always publish (up to the queue's own bounds). Default 1 (no share).
   */
  maxOwnerShare?: number;
}

/** One publish() call: its records go out in order, possibly over several produce requests. */
interface Pending {
  topic: string;
  /** Whose records these are, for the per-owner share (publish()'s `owner`). */
  owner: Waiting | undefined;
  messages: Message[];
  sizes: number[];
  /** Index of the first record not yet taken into a produce request. */
  next: number;
  /** Bytes of the records not yet taken. */
  bytesLeft: number;
  failed: boolean;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** Records and bytes one owner has waiting. */
interface Waiting {
  name: string;
  records: number;
  bytes: number;
}

/** A slice of one publish() in a produce request. */
interface Segment {
  p: Pending;
  from: number;
  to: number;
  bytes: number;
}

export interface BatchPublisher {
  /** `owner` (e.g. an app id) is held to `maxOwnerShare` of the queue. */
  publish(topic: string, messages: Message[], owner?: string): Promise<void>;
  /** Records waiting (queued plus in flight). */
  queued(): number;
  /** Bytes of records waiting (queued plus in flight). Optional so test doubles need not count bytes. */
  queuedBytes?(): number;
  /** Sends what is queued and stops accepting. */
  close(): Promise<void>;
}

/** Per-record framing Kafka adds around key, value and headers (lengths, offsets, timestamps), rounded up. */
const RECORD_OVERHEAD = 32;

const byteLength = (v: Buffer | string | null | undefined): number => (v == null ? 0 : typeof v === 'string' ? Buffer.byteLength(v) : v.length);

/** What a record costs in a produce request, close enough to bound requests and memory. */
export function recordBytes(m: Message): number {
  let n = RECORD_OVERHEAD + byteLength(m.key) + byteLength(m.value);
  if (m.headers) {
    for (const [k, v] of Object.entries(m.headers)) {
      n += Buffer.byteLength(k) + 8;
      if (Array.isArray(v)) for (const x of v) n += byteLength(x);
      else n += byteLength(v as Buffer | string | undefined);
    }
  }
  return n;
}

/** Broker answers that no retry can fix: the records themselves are refused. */
const REFUSED_BY_BROKER = new Set(['MESSAGE_TOO_LARGE', 'RECORD_LIST_TOO_LARGE', 'INVALID_RECORD', 'CORRUPT_MESSAGE', 'INVALID_REQUIRED_ACKS']);

function brokerRefusal(err: unknown, depth = 0): string | undefined {
  if (!err || typeof err !== 'object' || depth > 4) return undefined;
  const e = err as { type?: unknown; originalError?: unknown; errors?: unknown; cause?: unknown };
  if (typeof e.type === 'string' && REFUSED_BY_BROKER.has(e.type)) return e.type;
  for (const inner of [e.originalError, e.cause, ...(Array.isArray(e.errors) ? e.errors : [])]) {
    const t = brokerRefusal(inner, depth + 1);
    if (t) return t;
  }
  return undefined;
}

/**
 * Coalesces many small publishes into few produce requests (one in flight at
 * a time, which also keeps per-key order), and splits big ones: every request
 * stays under `maxRequestBytes` and `maxBatch` records. What waits is bounded
 * by records and by bytes; past either bound publish() refuses at once (503,
 * retriable), and a publish that could never fit is refused as too large (413).
 */
export function createBatchPublisher(opts: BatchPublisherOptions): BatchPublisher {
  const {
    producer,
    name = 'kafka',
    maxBatch = 500,
    maxRequestBytes = 512 * 1024,
    lingerMs = 2,
    maxQueued = 20_000,
    maxQueuedBytes = 64 * 1024 * 1024,
    timeoutMs = 5000,
    maxOwnerShare = 1,
  } = opts;
  const ownerRecords = Math.max(1, Math.floor(maxQueued * maxOwnerShare));
  const ownerBytes = Math.max(1, Math.floor(maxQueuedBytes * maxOwnerShare));
  const owners = new Map<string, Waiting>();
  /** Records and bytes that left the queue (sent, failed or dropped). */
  const release = (p: Pending, records: number, bytes: number) => {
    queuedRecords -= records;
    queuedBytes -= bytes;
    const o = p.owner;
    if (!o) return;
    o.records -= records;
    o.bytes -= bytes;
    if (o.records <= 0) owners.delete(o.name);
  };
  let queue: Pending[] = [];
  let queuedRecords = 0;
  let queuedBytes = 0;
  let inFlight: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;

  /** Takes up to one request's worth of records from the head of the queue. */
  const takeRequest = (): Segment[] => {
    const segments: Segment[] = [];
    let count = 0;
    let bytes = 0;
    while (queue.length > 0 && count < maxBatch) {
      const p = queue[0]!;
      const from = p.next;
      let segBytes = 0;
      while (p.next < p.messages.length && count < maxBatch) {
        const size = p.sizes[p.next]!;
        if (count > 0 && bytes + size > maxRequestBytes) break;
        count++;
        bytes += size;
        segBytes += size;
        p.next++;
      }
      if (p.next > from) {
        p.bytesLeft -= segBytes;
        segments.push({ p, from, to: p.next, bytes: segBytes });
      }
      if (p.next < p.messages.length) break; // the request is full
      queue.shift();
    }
    return segments;
  };

  const settle = (segments: Segment[], err: unknown) => {
    for (const s of segments) {
      release(s.p, s.to - s.from, s.bytes);
      if (s.p.failed) continue;
      if (err !== undefined) {
        // The rest of a failed publish is dropped: its caller is told it failed as a whole.
        s.p.failed = true;
        const rest = s.p.messages.length - s.p.next;
        if (rest > 0) {
          queue = queue.filter((q) => q !== s.p);
          release(s.p, rest, s.p.bytesLeft);
          s.p.next = s.p.messages.length;
          s.p.bytesLeft = 0;
        }
        s.p.reject(err);
      } else if (s.to === s.p.messages.length) {
        s.p.resolve();
      }
    }
  };

  const flush = async (): Promise<void> => {
    timer = undefined;
    if (inFlight || queue.length === 0) return;
    const segments = takeRequest();
    const byTopic = new Map<string, Message[]>();
    for (const s of segments) {
      let list = byTopic.get(s.p.topic);
      if (!list) byTopic.set(s.p.topic, (list = []));
      for (let i = s.from; i < s.to; i++) list.push(s.p.messages[i]!);
    }
    inFlight = (async () => {
      try {
        await withTimeout(
          producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) }),
          timeoutMs,
          'kafka produce',
        );
        settle(segments, undefined);
      } catch (err) {
        const refused = brokerRefusal(err);
        const e = refused
          ? new PushError('RECORD_REJECTED', `Kafka refused the records (${refused}): ${(err as Error).message}`, { status: 413, retriable: false, cause: err })
          : new PushError('KAFKA_UNAVAILABLE', `cannot publish to Kafka: ${(err as Error).message}`, { status: 503, retriable: true, cause: err });
        settle(segments, e);
      } finally {
        inFlight = undefined;
      }
    })();
    await inFlight;
    if (queue.length > 0) void flush();
  };

  return {
    publish(topic, messages, owner) {
      if (closed) return Promise.reject(new PushError('SHUTTING_DOWN', 'publisher is closed', { status: 503, retriable: true }));
      const sizes = new Array<number>(messages.length);
      let bytes = 0;
      for (let i = 0; i < messages.length; i++) {
        const size = recordBytes(messages[i]!);
        if (size > maxRequestBytes) {
          return Promise.reject(
            new PushError('RECORD_TOO_LARGE', `a ${name} record of ${size} bytes exceeds the largest Kafka produce request (${maxRequestBytes} bytes)`, {
              status: 413,
              details: { limit: maxRequestBytes },
            }),
          );
        }
        sizes[i] = size;
        bytes += size;
      }
      if (messages.length > maxQueued || bytes > maxQueuedBytes) {
        return Promise.reject(
          new PushError('PUBLISH_TOO_LARGE', `${messages.length} ${name} records (${bytes} bytes) can never fit the publish queue (${maxQueued} records, ${maxQueuedBytes} bytes)`, {
            status: 413,
            details: { limit: maxQueuedBytes },
          }),
        );
      }
      const mine = owner === undefined ? undefined : owners.get(owner);
      if (mine && (mine.records + messages.length > ownerRecords || mine.bytes + bytes > ownerBytes)) {
        return Promise.reject(
          new PushError('OVERLOADED', `${owner} has ${mine.records} ${name} records (${mine.bytes} bytes) waiting for Kafka, its share of the queue; retry shortly`, {
            status: 503,
            retriable: true,
            details: { owner },
          }),
        );
      }
      // After the share check: an app over its share is told so (details.owner), even when the
      // queue as a whole is full too (it was answered as a plain overload, with no owner).
      if (queuedRecords + messages.length > maxQueued || queuedBytes + bytes > maxQueuedBytes) {
        return Promise.reject(new PushError('OVERLOADED', `too many ${name} records waiting for Kafka; retry shortly`, { status: 503, retriable: true }));
      }
      if (messages.length === 0) return Promise.resolve();
      queuedRecords += messages.length;
      queuedBytes += bytes;
      let waiting: Waiting | undefined;
      if (owner !== undefined) {
        waiting = mine ?? { name: owner, records: 0, bytes: 0 };
        waiting.records += messages.length;
        waiting.bytes += bytes;
        owners.set(owner, waiting);
      }
      return new Promise<void>((resolve, reject) => {
        queue.push({ topic, owner: waiting, messages, sizes, next: 0, bytesLeft: bytes, failed: false, resolve, reject });
        if (queuedRecords >= maxBatch || queuedBytes >= maxRequestBytes) void flush();
        else timer ??= setTimeout(() => void flush(), lingerMs);
      });
    },
    queued: () => queuedRecords,
    queuedBytes: () => queuedBytes,
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
