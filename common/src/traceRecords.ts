import type { Redis } from 'ioredis';

/**
 * A small, bounded, expiring record of where one message went, so an operator
 * can follow it (`GET /v1/admin/trace/:messageId`, `push trace <id>`):
 *
 *   push:trace:<messageId>   hash, created by the dispatcher with TRACE_TTL_SECONDS
 *     meta                          JSON: app, target, user|group, persistent, createdAt, expiresAt, traceId, taskId
 *     r:<user|#all|#g:group>        JSON: at, outcome (forwarded|offline|dropped-transient|expired), nodes
 *     n:<outcome>                   recipients per outcome (counted even past the per-message cap of r: fields)
 *     w:<nodeId>|<user>|<device>    JSON: at, path (live|resume): the pusher wrote it to that socket
 *     a:<user>|<device>             ms: the device acknowledged it
 *     p:<user>|<device>             ms: parked for the device (delivery attempts exhausted)
 *     x:<nodeId>|<reason>           ms: a pusher dropped it (expired, slow-persistent, ...)
 *
 * Writes are queued in memory and sent in one pipeline every `flushMs`; past
 * `maxQueued` they are dropped (a trace is a diagnostic, never worth slowing
 * delivery). A pusher may write before the dispatcher's own flush lands, so
 * pushers set the lifetime only when the record has none yet (`EXPIRE NX`)
 * and the dispatcher sets it outright; TRACE_TTL_SECONDS=0 turns either off.
 */
export const traceKey = (messageId: string) => `push:trace:${messageId}`;

/** Recipients recorded by name per message and dispatcher batch; the rest are only counted. */
export const MAX_TRACED_RECIPIENTS = 50;

export interface TraceMeta {
  app: string;
  target: 'USER' | 'GROUP' | 'ALL';
  group?: string | null;
  persistent: boolean;
  createdAt: number;
  expiresAt: number;
  traceId: string;
  taskId?: string | null;
}

type Op = { id: string; field: string; value: string; nx?: boolean } | { id: string; field: string; incr: number };

export interface TraceWriter {
  set(messageId: string, field: string, value: string): void;
  /** Sets the field only if it has no value yet (the first fact wins). */
  setIfAbsent(messageId: string, field: string, value: string): void;
  incr(messageId: string, field: string, by: number): void;
  /** Writes queued so far (tests, shutdown). */
  flush(): Promise<void>;
  close(): Promise<void>;
}

export interface TraceWriterOptions {
  redis: Redis;
  /** Lifetime of a trace record; 0 turns tracing off. */
  ttlSeconds: number;
  /** Set the lifetime only on records that have none yet (pushers). Default false. */
  keepExpiry?: boolean;
  /** Default 100 ms. */
  flushMs?: number;
  /** Queued writes before new ones are dropped. Default 20000. */
  maxQueued?: number;
  onError?: (err: Error) => void;
  onDropped?: (n: number) => void;
}

export function createTraceWriter(opts: TraceWriterOptions): TraceWriter {
  const { redis, ttlSeconds, keepExpiry = false, flushMs = 100, maxQueued = 20_000 } = opts;
  let queue: Op[] = [];
  let flushing: Promise<void> | undefined;
  let closed = false;

  const write = async (ops: Op[]) => {
    const pipeline = redis.pipeline();
    // One HSET per message with all its fields, then its lifetime.
    const byId = new Map<string, string[]>();
    for (const op of ops) {
      if ('value' in op && op.nx) pipeline.hsetnx(traceKey(op.id), op.field, op.value);
      else if ('value' in op) {
        let args = byId.get(op.id);
        if (!args) byId.set(op.id, (args = []));
        args.push(op.field, op.value);
      } else pipeline.hincrby(traceKey(op.id), op.field, op.incr);
    }
    for (const [id, args] of byId) pipeline.hset(traceKey(id), ...args);
    for (const id of new Set(ops.map((op) => op.id))) {
      if (keepExpiry) pipeline.expire(traceKey(id), ttlSeconds, 'NX');
      else pipeline.expire(traceKey(id), ttlSeconds);
    }
    await pipeline.exec();
  };

  const flush = async (): Promise<void> => {
    while (flushing) await flushing;
    if (queue.length === 0) return;
    const ops = queue;
    queue = [];
    flushing = write(ops)
      .catch((err: Error) => opts.onError?.(err))
      .finally(() => (flushing = undefined));
    await flushing;
  };

  const timer = setInterval(() => void flush(), flushMs);
  timer.unref();
  const push = (op: Op) => {
    if (ttlSeconds <= 0 || closed) return;
    if (queue.length >= maxQueued) {
      opts.onDropped?.(1);
      return;
    }
    queue.push(op);
  };

  return {
    set: (id, field, value) => push({ id, field, value }),
    setIfAbsent: (id, field, value) => push({ id, field, value, nx: true }),
    incr: (id, field, by) => push({ id, field, incr: by }),
    flush,
    async close() {
      clearInterval(timer);
      await flush();
      closed = true;
    },
  };
}

export interface TraceRecord {
  meta?: TraceMeta;
  fields: Record<string, string>;
}

export async function readTrace(redis: Redis, messageId: string): Promise<TraceRecord> {
  const fields = await redis.hgetall(traceKey(messageId));
  let meta: TraceMeta | undefined;
  try {
    meta = fields.meta ? (JSON.parse(fields.meta) as TraceMeta) : undefined;
  } catch {
    meta = undefined;
  }
  return { meta, fields };
}

/**
 * The trace id of a submission from its HTTP headers: W3C `traceparent`
 * (its 32-hex trace id) or `X-Trace-Id`; undefined when neither is usable.
 */
export function traceIdFromHeaders(headers: Record<string, string | string[] | undefined>): string | undefined {
  const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v[0] : v);
  const parent = one(headers.traceparent);
  const m = parent ? /^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$/.exec(parent.trim()) : null;
  if (m && !/^0+$/.test(m[1]!)) return m[1];
  const given = one(headers['x-trace-id'])?.trim();
  if (given && /^[\x21-\x7e]{1,256}$/.test(given)) return given;
  return undefined;
}
