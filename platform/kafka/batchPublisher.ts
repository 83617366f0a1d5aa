import type { Message, Producer } from 'kafkajs';
import { PushError, withTimeout } from '../errors.js';

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

class KafkaBatchPublisher implements BatchPublisher {
  private readonly producer: Producer;
  private readonly name: string;
  private readonly maxBatch: number;
  private readonly maxRequestBytes: number;
  private readonly lingerMs: number;
  private readonly maxQueued: number;
  private readonly maxQueuedBytes: number;
  private readonly timeoutMs: number;
  /** One owner's share of the queue, in records and in bytes. */
  private readonly ownerRecords: number;
  private readonly ownerBytes: number;
  private readonly owners = new Map<string, Waiting>();
  private queue: Pending[] = [];
  private queuedRecords = 0;
  private queuedByteCount = 0;
  private inFlight: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(opts: BatchPublisherOptions) {
    this.producer = opts.producer;
    this.name = opts.name ?? 'kafka';
    this.maxBatch = opts.maxBatch ?? 500;
    this.maxRequestBytes = opts.maxRequestBytes ?? 512 * 1024;
    this.lingerMs = opts.lingerMs ?? 2;
    this.maxQueued = opts.maxQueued ?? 20_000;
    this.maxQueuedBytes = opts.maxQueuedBytes ?? 64 * 1024 * 1024;
    this.timeoutMs = opts.timeoutMs ?? 5000;
    const share = opts.maxOwnerShare ?? 1;
    this.ownerRecords = Math.max(1, Math.floor(this.maxQueued * share));
    this.ownerBytes = Math.max(1, Math.floor(this.maxQueuedBytes * share));
  }

  publish(topic: string, messages: Message[], owner?: string): Promise<void> {
    if (this.closed) return Promise.reject(new PushError('SHUTTING_DOWN', 'publisher is closed', { status: 503, retriable: true }));
    const sized = this.sizesOf(messages);
    if (sized instanceof PushError) return Promise.reject(sized);
    const { sizes, bytes } = sized;
    const mine = owner === undefined ? undefined : this.owners.get(owner);
    const refused = this.overloaded(messages.length, bytes, owner, mine);
    if (refused) return Promise.reject(refused);
    if (messages.length === 0) return Promise.resolve();
    this.queuedRecords += messages.length;
    this.queuedByteCount += bytes;
    let waiting: Waiting | undefined;
    if (owner !== undefined) {
      waiting = mine ?? { name: owner, records: 0, bytes: 0 };
      waiting.records += messages.length;
      waiting.bytes += bytes;
      this.owners.set(owner, waiting);
    }
    return new Promise<void>((resolve, reject) => {
      this.queue.push({ topic, owner: waiting, messages, sizes, next: 0, bytesLeft: bytes, failed: false, resolve, reject });
      if (this.queuedRecords >= this.maxBatch || this.queuedByteCount >= this.maxRequestBytes) void this.flush();
      else this.timer ??= setTimeout(() => void this.flush(), this.lingerMs);
    });
  }

  queued(): number {
    return this.queuedRecords;
  }

  queuedBytes(): number {
    return this.queuedByteCount;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    while (this.queue.length > 0 || this.inFlight) {
      if (this.inFlight) await this.inFlight;
      else await this.flush();
    }
    this.queue = [];
  }

  /** Each record's size and the total; a refusal when one record can never fit a produce request, or all of them the queue. */
  private sizesOf(messages: Message[]): { sizes: number[]; bytes: number } | PushError {
    const sizes = new Array<number>(messages.length);
    let bytes = 0;
    for (let i = 0; i < messages.length; i++) {
      const size = recordBytes(messages[i]!);
      if (size > this.maxRequestBytes) {
        return new PushError(
          'RECORD_TOO_LARGE',
          `a ${this.name} record of ${size} bytes exceeds the largest Kafka produce request (${this.maxRequestBytes} bytes)`,
          {
            status: 413,
            details: { limit: this.maxRequestBytes },
          },
        );
      }
      sizes[i] = size;
      bytes += size;
    }
    if (messages.length > this.maxQueued || bytes > this.maxQueuedBytes) {
      return new PushError(
        'PUBLISH_TOO_LARGE',
        `${messages.length} ${this.name} records (${bytes} bytes) can never fit the publish queue (${this.maxQueued} records, ${this.maxQueuedBytes} bytes)`,
        { status: 413, details: { limit: this.maxQueuedBytes } },
      );
    }
    return { sizes, bytes };
  }

  /** The refusal of a publish that does not fit now: over its owner's share first, then over the whole queue. */
  private overloaded(records: number, bytes: number, owner: string | undefined, mine: Waiting | undefined): PushError | undefined {
    if (mine && (mine.records + records > this.ownerRecords || mine.bytes + bytes > this.ownerBytes)) {
      return new PushError(
        'OVERLOADED',
        `${owner} has ${mine.records} ${this.name} records (${mine.bytes} bytes) waiting for Kafka, its share of the queue; retry shortly`,
        {
          status: 503,
          retriable: true,
          details: { owner },
        },
      );
    }
    // After the share check: an app over its share is told so (details.owner), even when the
    // queue as a whole is full too (it was answered as a plain overload, with no owner).
    if (this.queuedRecords + records > this.maxQueued || this.queuedByteCount + bytes > this.maxQueuedBytes) {
      return new PushError('OVERLOADED', `too many ${this.name} records waiting for Kafka; retry shortly`, { status: 503, retriable: true });
    }
    return undefined;
  }

  /** Records and bytes that left the queue (sent, failed or dropped). */
  private release(p: Pending, records: number, bytes: number): void {
    this.queuedRecords -= records;
    this.queuedByteCount -= bytes;
    const o = p.owner;
    if (!o) return;
    o.records -= records;
    o.bytes -= bytes;
    if (o.records <= 0) this.owners.delete(o.name);
  }

  /** Takes up to one request's worth of records from the head of the queue. */
  private takeRequest(): Segment[] {
    const segments: Segment[] = [];
    let count = 0;
    let bytes = 0;
    while (this.queue.length > 0 && count < this.maxBatch) {
      const p = this.queue[0]!;
      const from = p.next;
      let segBytes = 0;
      while (p.next < p.messages.length && count < this.maxBatch) {
        const size = p.sizes[p.next]!;
        if (count > 0 && bytes + size > this.maxRequestBytes) break;
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
      this.queue.shift();
    }
    return segments;
  }

  private settle(segments: Segment[], err: unknown): void {
    for (const s of segments) {
      this.release(s.p, s.to - s.from, s.bytes);
      if (s.p.failed) continue;
      if (err !== undefined) {
        // The rest of a failed publish is dropped: its caller is told it failed as a whole.
        s.p.failed = true;
        const rest = s.p.messages.length - s.p.next;
        if (rest > 0) {
          this.queue = this.queue.filter((q) => q !== s.p);
          this.release(s.p, rest, s.p.bytesLeft);
          s.p.next = s.p.messages.length;
          s.p.bytesLeft = 0;
        }
        s.p.reject(err);
      } else if (s.to === s.p.messages.length) {
        s.p.resolve();
      }
    }
  }

  private async flush(): Promise<void> {
    this.timer = undefined;
    if (this.inFlight || this.queue.length === 0) return;
    const segments = this.takeRequest();
    const byTopic = new Map<string, Message[]>();
    for (const s of segments) {
      let list = byTopic.get(s.p.topic);
      if (!list) byTopic.set(s.p.topic, (list = []));
      for (let i = s.from; i < s.to; i++) list.push(s.p.messages[i]!);
    }
    this.inFlight = this.send(segments, byTopic);
    await this.inFlight;
    if (this.queue.length > 0) void this.flush();
  }

  /** One produce request; settles its segments either way. */
  private async send(segments: Segment[], byTopic: Map<string, Message[]>): Promise<void> {
    try {
      await withTimeout(
        this.producer.sendBatch({ acks: -1, topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) }),
        this.timeoutMs,
        'kafka produce',
      );
      this.settle(segments, undefined);
    } catch (err) {
      const refused = brokerRefusal(err);
      const e = refused
        ? new PushError('RECORD_REJECTED', `Kafka refused the records (${refused}): ${(err as Error).message}`, { status: 413, retriable: false, cause: err })
        : new PushError('KAFKA_UNAVAILABLE', `cannot publish to Kafka: ${(err as Error).message}`, { status: 503, retriable: true, cause: err });
      this.settle(segments, e);
    } finally {
      this.inFlight = undefined;
    }
  }
}

/**
 * Coalesces many small publishes into few produce requests (one in flight at
 * a time, which also keeps per-key order), and splits big ones: every request
 * stays under `maxRequestBytes` and `maxBatch` records. What waits is bounded
 * by records and by bytes; past either bound publish() refuses at once (503,
 * retriable), and a publish that could never fit is refused as too large (413).
 */
export function createBatchPublisher(opts: BatchPublisherOptions): BatchPublisher {
  return new KafkaBatchPublisher(opts);
}
