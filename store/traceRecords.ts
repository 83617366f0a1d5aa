import type { Redis } from 'ioredis';
import { traceEntry, type TraceFact } from './traceFacts.js';

/**
 * A small, bounded, expiring record of where one message went, so an operator
 * can follow it (`GET /v1/admin/trace/:messageId`, `push trace <id>`):
 *
 *   push:trace:<messageId>   hash, created by the dispatcher with TRACE_TTL_SECONDS
 *     meta                          JSON: app, target, user|group, persistent, createdAt, expiresAt, traceId, taskId
 *     r:<user|#all|#g:group>        JSON: at, outcome (forwarded|offline|dropped-transient|expired), nodes
 *     n:<outcome>                   recipients per outcome (counted even past the per-message cap of r: fields)
 *     w:<nodeId>|<user>|<device>    JSON: at, path (live|resume): the pusher wrote it to that socket
 *     a:<user>|<device>             ms: the device acknowledged it (written only onto an existing record:
 *                                   an ack is client input, and client input never creates a key)
 *     p:<user>|<device>             ms: parked for the device (delivery attempts exhausted)
 *     x:<nodeId>|<reason>           ms: a pusher dropped it (expired, slow-persistent, ...)
 *
 * Services write and read these as typed facts (traceFacts.ts), never as field names.
 *
 * Writes are queued in memory and sent every `flushMs` (a Redis script call
 * per batch of records, see WRITE_SCRIPT); past
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

type Op = { id: string; field: string; value: string; nx?: boolean; ifExists?: boolean } | { id: string; field: string; incr: number };

export interface TraceWriter {
  /**
   * Notes a fact. `ifExists`: only on a record that already exists (facts that come from
   * clients, e.g. acks); `ifAbsent`: only if the fact's field has no value yet (the first wins).
   */
  note(messageId: string, fact: Exclude<TraceFact, { kind: 'counted' }>, opts?: { ifExists?: boolean; ifAbsent?: boolean }): void;
  /** `ifExists`: only on a record that already exists (for facts that come from clients, e.g. acks). */
  set(messageId: string, field: string, value: string, opts?: { ifExists?: boolean }): void;
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

/**
 * Applies one flush's writes to many trace records in one call: per record
 * its HSETNX fields, its HSET fields, its HINCRBY counts and its lifetime.
 * ARGV: ttl, "nx" (EXPIRE NX) or "", then per key: count and field/value pairs
 * for HSETNX, then for HSET, then field/increment pairs for HINCRBY, then
 * field/value pairs for HSET on an existing key only (a key that is still
 * missing after the others is neither created nor given a lifetime).
 * A script per batch of records costs the client a fraction of what a
 * command per field does (ioredis spends several microseconds per command).
 */
const WRITE_SCRIPT = `
local ttl = ARGV[1]
local nx = ARGV[2] == 'nx'
local i = 3
for k = 1, #KEYS do
  local key = KEYS[k]
  local n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do redis.call('HSETNX', key, ARGV[i], ARGV[i + 1]); i = i + 2 end
  n = tonumber(ARGV[i]); i = i + 1
  if n > 0 then redis.call('HSET', key, unpack(ARGV, i, i + n * 2 - 1)); i = i + n * 2 end
  n = tonumber(ARGV[i]); i = i + 1
  for _ = 1, n do redis.call('HINCRBY', key, ARGV[i], ARGV[i + 1]); i = i + 2 end
  n = tonumber(ARGV[i]); i = i + 1
  if n > 0 and redis.call('EXISTS', key) == 1 then redis.call('HSET', key, unpack(ARGV, i, i + n * 2 - 1)) end
  i = i + n * 2
  if nx then redis.call('EXPIRE', key, ttl, 'NX') else redis.call('EXPIRE', key, ttl) end
end
return #KEYS`;

/** Records per script call: bounds how long one call holds Redis (about 5 us per record). */
const RECORDS_PER_CALL = 100;

type TraceScriptRedis = Redis & { pushTraceWrite(numKeys: number, ...args: (string | number)[]): Promise<number> };

function withWriteScript(redis: Redis): TraceScriptRedis {
  const r = redis as TraceScriptRedis;
  if (typeof r.pushTraceWrite !== 'function') redis.defineCommand('pushTraceWrite', { lua: WRITE_SCRIPT });
  return r;
}

interface PendingRecord {
  nx: [string, string][];
  set: Map<string, string>;
  incr: Map<string, number>;
  ifExists: Map<string, string>;
}

/**
 * Sends one flush's operations: per record its first-fact-wins fields, then the others (a
 * later HSET in the same flush wins), then counts, RECORDS_PER_CALL records per script call.
 */
async function writeOps(redis: TraceScriptRedis, ops: Op[], ttlSeconds: number, keepExpiry: boolean): Promise<void> {
  const byId = new Map<string, PendingRecord>();
  for (const op of ops) {
    let rec = byId.get(op.id);
    if (!rec) byId.set(op.id, (rec = { nx: [], set: new Map(), incr: new Map(), ifExists: new Map() }));
    if (!('value' in op)) rec.incr.set(op.field, (rec.incr.get(op.field) ?? 0) + op.incr);
    else if (op.ifExists) rec.ifExists.set(op.field, op.value);
    else if (op.nx) rec.nx.push([op.field, op.value]);
    else rec.set.set(op.field, op.value);
  }
  const calls: Promise<number>[] = [];
  let keys: string[] = [];
  let args: (string | number)[] = [];
  const send = () => {
    calls.push(redis.pushTraceWrite(keys.length, ...keys, ttlSeconds, keepExpiry ? 'nx' : '', ...args));
    keys = [];
    args = [];
  };
  for (const [id, rec] of byId) {
    keys.push(traceKey(id));
    args.push(rec.nx.length);
    for (const [f, v] of rec.nx) args.push(f, v);
    args.push(rec.set.size);
    for (const [f, v] of rec.set) args.push(f, v);
    args.push(rec.incr.size);
    for (const [f, n] of rec.incr) args.push(f, n);
    args.push(rec.ifExists.size);
    for (const [f, v] of rec.ifExists) args.push(f, v);
    if (keys.length >= RECORDS_PER_CALL) send();
  }
  if (keys.length > 0) send();
  await Promise.all(calls);
}

export function createTraceWriter(opts: TraceWriterOptions): TraceWriter {
  const { ttlSeconds, keepExpiry = false, flushMs = 100, maxQueued = 20_000 } = opts;
  const redis = withWriteScript(opts.redis);
  let queue: Op[] = [];
  let flushing: Promise<void> | undefined;
  let closed = false;

  const write = (ops: Op[]) => writeOps(redis, ops, ttlSeconds, keepExpiry);

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

  // A timer only while records wait: an idle service does not wake up for nothing.
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      void flush().then(() => queue.length > 0 && schedule());
    }, flushMs);
    timer.unref();
  };
  const push = (op: Op) => {
    if (ttlSeconds <= 0 || closed) return;
    if (queue.length >= maxQueued) {
      opts.onDropped?.(1);
      return;
    }
    queue.push(op);
    schedule();
  };

  return {
    note: (id, fact, opts) => {
      const { field, value } = traceEntry(fact);
      push(opts?.ifAbsent ? { id, field, value, nx: true } : opts?.ifExists ? { id, field, value, ifExists: true } : { id, field, value });
    },
    set: (id, field, value, opts) => push(opts?.ifExists ? { id, field, value, ifExists: true } : { id, field, value }),
    setIfAbsent: (id, field, value) => push({ id, field, value, nx: true }),
    incr: (id, field, by) => push({ id, field, incr: by }),
    flush,
    async close() {
      clearTimeout(timer);
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
