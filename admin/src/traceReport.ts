import type { Db } from 'mongodb';
import type { Redis } from 'ioredis';
import type { StoredMessage } from '../../store/messages.js';
import type { DeliveryStore } from '../../store/deliveryStore.js';
import { readTrace, type TraceMeta } from '../../store/traceRecords.js';

export type TraceHopName = 'stored' | 'outbox' | 'ingested' | 'dispatched' | 'written' | 'acked' | 'parked' | 'dropped' | 'expired';

export interface TraceHop {
  hop: TraceHopName;
  at: string | null;
  user?: string;
  device?: string;
  node?: string;
  nodes?: string[];
  detail: string;
}

export type TraceState = 'outbox' | 'ingested' | 'dispatched' | 'waiting-offline' | 'delivered' | 'acked' | 'parked' | 'expired' | 'dropped';

export interface TraceDevice {
  device: string;
  writtenBy: string[];
  acked: boolean;
  parked: boolean;
  /** Deliveries on connect (resume) counted in the store. */
  tries: number;
}

export interface TraceRecipient {
  user: string;
  outcome: string | null;
  nodes: string[];
  /** Persistent unicast: whether the message is in the user's inbox (waits there for offline devices). */
  inInbox: boolean | null;
  devices: TraceDevice[];
}

export interface TraceReport {
  messageId: string;
  traceId: string | null;
  app: string | null;
  target: string | null;
  group: string | null;
  taskId: string | null;
  persistent: boolean | null;
  createdAt: string | null;
  expiresAt: string | null;
  expired: boolean;
  state: TraceState;
  /** False when the dispatcher kept no trace record (tracing off, or TRACE_TTL_SECONDS passed). */
  traced: boolean;
  counts: Record<string, number>;
  recipients: TraceRecipient[];
  hops: TraceHop[];
}

const iso = (ms: number | undefined | null) => (ms === undefined || ms === null || !Number.isFinite(ms) ? null : new Date(ms).toISOString());
const parse = <T>(s: string | undefined): T | undefined => {
  try {
    return s ? (JSON.parse(s) as T) : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Where one message is, from the durable state: the message document and
 * outbox (MongoDB), the message's trace record (Redis: what the dispatcher
 * routed, what pushers wrote, acked, parked or dropped), the recipients'
 * deliveries and the devices' acks and attempts (store/deliveryStore.ts). Undefined when nothing
 * knows the id.
 */
export async function traceMessage(
  { db, redis, store }: { db: Db; redis: Redis; store: Pick<DeliveryStore, 'traceState'> },
  messageId: string,
  now = Date.now(),
): Promise<TraceReport | undefined> {
  const [msg, outboxed, trace] = await Promise.all([
    db.collection<StoredMessage>('messages').findOne({ _id: messageId }),
    db.collection<{ _id: string }>('outbox').findOne({ _id: messageId }),
    readTrace(redis, messageId),
  ]);
  const meta: TraceMeta | undefined = trace.meta;
  if (!msg && !meta) return undefined;
  const app = msg?.app ?? meta?.app ?? '';
  const expiresAtMs = msg?.expiresAt.getTime() ?? meta?.expiresAt ?? Infinity;
  const createdAtMs = msg?.createdAt.getTime() ?? meta?.createdAt;
  const persistent = msg ? msg.persistent : (meta?.persistent ?? null);
  const target = msg?.target ?? meta?.target ?? null;
  const hops: TraceHop[] = [];
  if (msg) hops.push({ hop: 'stored', at: iso(createdAtMs), detail: 'stored in MongoDB (messages)' });
  if (outboxed) hops.push({ hop: 'outbox', at: iso(createdAtMs), detail: 'stored, not yet published to push.ingest: the outbox sweeper will publish it' });

  const recipients = new Map<string, TraceRecipient>();
  const recipient = (user: string) => {
    let r = recipients.get(user);
    if (!r) recipients.set(user, (r = { user, outcome: null, nodes: [], inInbox: null, devices: [] }));
    return r;
  };
  for (const u of msg?.users ?? []) recipient(u);
  const counts: Record<string, number> = {};
  const devices = new Map<string, TraceDevice & { user: string }>();
  const device = (user: string, id: string) => {
    const k = `${user}|${id}`;
    let d = devices.get(k);
    if (!d) devices.set(k, (d = { user, device: id, writtenBy: [], acked: false, parked: false, tries: 0 }));
    return d;
  };
  let firstDispatch = Infinity;
  for (const [field, value] of Object.entries(trace.fields)) {
    const [kind, rest = ''] = [field.slice(0, field.indexOf(':')), field.slice(field.indexOf(':') + 1)];
    if (kind === 'n') counts[rest] = Number(value);
    else if (kind === 'r') {
      const v = parse<{ at: number; outcome: string; nodes: string[] }>(value);
      if (!v) continue;
      const r = recipient(rest);
      r.outcome = v.outcome;
      r.nodes = v.nodes;
      firstDispatch = Math.min(firstDispatch, v.at);
      const detail =
        v.outcome === 'forwarded'
          ? `routed to ${v.nodes.join(', ')}`
          : v.outcome === 'offline'
            ? 'no live connection: waits in the inbox for the next connect'
            : v.outcome === 'dropped-transient'
              ? 'no live connection: transient message dropped'
              : 'expired before it was routed';
      hops.push({
        hop: v.outcome === 'expired' ? 'expired' : v.outcome === 'dropped-transient' ? 'dropped' : 'dispatched',
        at: iso(v.at),
        user: rest,
        nodes: v.nodes,
        detail,
      });
    } else if (kind === 'w') {
      const [node = '', user = '', dev = ''] = rest.split('|');
      const v = parse<{ at: number; path: string }>(value);
      device(user, dev).writtenBy.push(node);
      hops.push({ hop: 'written', at: iso(v?.at), node, user, device: dev, detail: `written to the socket by ${node} (${v?.path ?? 'live'})` });
    } else if (kind === 'a') {
      const [user = '', dev = ''] = rest.split('|');
      device(user, dev).acked = true;
      hops.push({ hop: 'acked', at: iso(Number(value)), user, device: dev, detail: 'acknowledged by the device' });
    } else if (kind === 'p') {
      const [user = '', dev = ''] = rest.split('|');
      device(user, dev).parked = true;
      hops.push({ hop: 'parked', at: iso(Number(value)), user, device: dev, detail: 'delivery attempts exhausted: parked for this device, not sent again' });
    } else if (kind === 'x') {
      const [node = '', reason = ''] = rest.split('|');
      hops.push({ hop: 'dropped', at: iso(Number(value)), node, detail: `dropped by ${node}: ${reason}` });
    }
  }
  if (meta || (msg && !outboxed)) {
    hops.push({
      hop: 'ingested',
      at: iso(Number.isFinite(firstDispatch) ? firstDispatch : null),
      detail: meta ? 'published to push.ingest and consumed by the dispatcher' : 'published to push.ingest (no dispatcher trace record yet)',
    });
  }

  // Durable state: deliveries of persistent unicast recipients, acks and attempts of known devices.
  const users = persistent && target === 'USER' ? [...recipients.keys()].slice(0, 50) : [];
  const known = [...devices.values()].slice(0, 50);
  const durable = await store.traceState(app, messageId, users, known);
  users.forEach((u, i) => (recipient(u).inInbox = durable.inDeliveries[i] ?? false));
  known.forEach((d, i) => {
    if (durable.devices[i]?.acked) d.acked = true;
    d.tries = durable.devices[i]?.tries ?? 0;
  });
  for (const d of devices.values()) {
    const { user, ...rest } = d;
    recipient(user).devices.push(rest);
  }

  const expired = expiresAtMs <= now;
  const all = [...devices.values()];
  const anyAcked = all.some((d) => d.acked);
  const allAcked = all.length > 0 && all.every((d) => d.acked);
  const waiting = [...recipients.values()].some((r) => r.outcome === 'offline' || (r.inInbox && !r.devices.some((d) => d.acked)));
  if (expired && !allAcked) {
    const undelivered = [...recipients.values()].filter((r) => !r.devices.some((d) => d.acked)).map((r) => r.user);
    hops.push({
      hop: 'expired',
      at: iso(expiresAtMs),
      detail: `TTL passed${undelivered.length ? ` while undelivered to ${undelivered.slice(0, 10).join(', ')}` : ''}`,
    });
  }
  let state: TraceState;
  if (outboxed) state = 'outbox';
  else if (all.some((d) => d.parked) && !anyAcked) state = 'parked';
  else if (expired && !allAcked && !anyAcked) state = 'expired';
  else if (allAcked && !waiting) state = 'acked';
  else if (anyAcked) state = waiting && !expired ? 'waiting-offline' : 'acked';
  else if (all.some((d) => d.writtenBy.length > 0)) state = 'delivered';
  else if (waiting) state = 'waiting-offline';
  else if (counts['dropped-transient'] || counts.expired) state = counts.expired ? 'expired' : 'dropped';
  else if (meta) state = 'dispatched';
  else state = 'ingested';

  const order: Record<TraceHopName, number> = { stored: 0, outbox: 1, ingested: 2, dispatched: 3, dropped: 4, written: 5, acked: 6, parked: 7, expired: 8 };
  hops.sort((a, b) => (a.at && b.at && a.at !== b.at ? (a.at < b.at ? -1 : 1) : order[a.hop] - order[b.hop]));
  return {
    messageId,
    traceId: msg?.traceId ?? meta?.traceId ?? null,
    app: app || null,
    target,
    group: msg?.group ?? meta?.group ?? null,
    taskId: msg?.taskId ?? meta?.taskId ?? null,
    persistent,
    createdAt: iso(createdAtMs),
    expiresAt: iso(expiresAtMs),
    expired,
    state,
    traced: meta !== undefined,
    counts,
    recipients: [...recipients.values()],
    hops,
  };
}
