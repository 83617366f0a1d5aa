import type { Redis } from 'ioredis';
import type { MessageReader, StoredMessage } from '../../store/messages.js';
import type { DeliveryStore } from '../../store/deliveryStore.js';
import { readTrace, type TraceMeta } from '../../store/traceRecords.js';
import type { TraceFact } from '../../store/traceFacts.js';

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

export interface TraceDeps {
  /** The stored message and whether it still waits in the outbox (store/messages.ts). */
  messages: Pick<MessageReader, 'get' | 'inOutbox'>;
  /** Where the trace records are (store/traceRecords.ts). */
  redis: Redis;
  store: Pick<DeliveryStore, 'traceState'>;
}

type DeviceFacts = TraceDevice & { user: string };

const routedDetail = (outcome: string, nodes: string[]) =>
  outcome === 'forwarded'
    ? `routed to ${nodes.join(', ')}`
    : outcome === 'offline'
      ? 'no live connection: waits in the inbox for the next connect'
      : outcome === 'dropped-transient'
        ? 'no live connection: transient message dropped'
        : 'expired before it was routed';
const routedHop = (outcome: string): TraceHopName => (outcome === 'expired' ? 'expired' : outcome === 'dropped-transient' ? 'dropped' : 'dispatched');
const HOP_ORDER: Record<TraceHopName, number> = { stored: 0, outbox: 1, ingested: 2, dispatched: 3, dropped: 4, written: 5, acked: 6, parked: 7, expired: 8 };

/** The recipients, devices, counts and hops of one message, gathered from its trace record's facts. */
class TraceFacts {
  readonly recipients = new Map<string, TraceRecipient>();
  readonly devices = new Map<string, DeviceFacts>();
  readonly counts: Record<string, number> = {};
  readonly hops: TraceHop[] = [];
  firstDispatch = Infinity;

  recipient(user: string): TraceRecipient {
    let r = this.recipients.get(user);
    if (!r) this.recipients.set(user, (r = { user, outcome: null, nodes: [], inInbox: null, devices: [] }));
    return r;
  }

  device(user: string, id: string): DeviceFacts {
    const k = `${user}|${id}`;
    let d = this.devices.get(k);
    if (!d) this.devices.set(k, (d = { user, device: id, writtenBy: [], acked: false, parked: false, tries: 0 }));
    return d;
  }

  add(e: TraceFact): void {
    switch (e.kind) {
      case 'counted':
        this.counts[e.outcome] = e.n;
        return;
      case 'routed':
        return this.routed(e);
      case 'written':
        this.device(e.user, e.device).writtenBy.push(e.nodeId);
        this.hops.push({
          hop: 'written',
          at: iso(e.at),
          node: e.nodeId,
          user: e.user,
          device: e.device,
          detail: `written to the socket by ${e.nodeId} (${e.path})`,
        });
        return;
      case 'acked':
        this.device(e.user, e.device).acked = true;
        this.hops.push({ hop: 'acked', at: iso(e.at), user: e.user, device: e.device, detail: 'acknowledged by the device' });
        return;
      case 'parked':
        this.device(e.user, e.device).parked = true;
        this.hops.push({
          hop: 'parked',
          at: iso(e.at),
          user: e.user,
          device: e.device,
          detail: 'delivery attempts exhausted: parked for this device, not sent again',
        });
        return;
      case 'dropped':
        this.hops.push({ hop: 'dropped', at: iso(e.at), node: e.nodeId, detail: `dropped by ${e.nodeId}: ${e.reason}` });
    }
  }

  private routed(e: Extract<TraceFact, { kind: 'routed' }>): void {
    const r = this.recipient(e.recipient);
    r.outcome = e.outcome;
    r.nodes = e.nodes;
    this.firstDispatch = Math.min(this.firstDispatch, e.at);
    this.hops.push({ hop: routedHop(e.outcome), at: iso(e.at), user: e.recipient, nodes: e.nodes, detail: routedDetail(e.outcome, e.nodes) });
  }

  /** Deliveries of persistent unicast recipients, acks and attempts of known devices, from the store. */
  async addDurable(store: TraceDeps['store'], app: string, messageId: string, unicast: boolean): Promise<void> {
    const users = unicast ? [...this.recipients.keys()].slice(0, 50) : [];
    const known = [...this.devices.values()].slice(0, 50);
    const durable = await store.traceState(app, messageId, users, known);
    users.forEach((u, i) => (this.recipient(u).inInbox = durable.inDeliveries[i] ?? false));
    known.forEach((d, i) => {
      if (durable.devices[i]?.acked) d.acked = true;
      d.tries = durable.devices[i]?.tries ?? 0;
    });
    for (const d of this.devices.values()) {
      const { user, ...rest } = d;
      this.recipient(user).devices.push(rest);
    }
  }
}

/** What is known of the message itself: its stored document, else its trace record's meta. */
interface MessageFacts {
  msg: StoredMessage | null;
  meta: TraceMeta | undefined;
  outboxed: boolean;
  app: string;
  createdAtMs: number | undefined;
  expiresAtMs: number;
  persistent: boolean | null;
  target: string | null;
}

async function readMessageFacts(deps: TraceDeps, messageId: string): Promise<{ m: MessageFacts; facts: TraceFact[] } | undefined> {
  const [msg, inOutbox, trace] = await Promise.all([deps.messages.get(messageId), deps.messages.inOutbox(messageId), readTrace(deps.redis, messageId)]);
  const meta = trace.meta;
  if (!msg && !meta) return undefined;
  const m: MessageFacts = {
    msg,
    meta,
    // A message the dispatcher traced was published, whatever outbox entry is still being cleared.
    outboxed: inOutbox && meta === undefined,
    app: msg?.app ?? meta?.app ?? '',
    createdAtMs: msg?.createdAt.getTime() ?? meta?.createdAt,
    expiresAtMs: msg?.expiresAt.getTime() ?? meta?.expiresAt ?? Infinity,
    persistent: msg ? msg.persistent : (meta?.persistent ?? null),
    target: msg?.target ?? meta?.target ?? null,
  };
  return { m, facts: trace.facts };
}

/** The hops known before any trace entry (stored, outbox) and after them (ingested, expired). */
function storeHops(m: MessageFacts): TraceHop[] {
  const hops: TraceHop[] = [];
  if (m.msg) hops.push({ hop: 'stored', at: iso(m.createdAtMs), detail: 'stored in MongoDB (messages)' });
  if (m.outboxed) hops.push({ hop: 'outbox', at: iso(m.createdAtMs), detail: 'stored, not yet published to push.ingest: the outbox sweeper will publish it' });
  return hops;
}

function ingestedHop(m: MessageFacts, firstDispatch: number): TraceHop | undefined {
  if (!m.meta && !(m.msg && !m.outboxed)) return undefined;
  return {
    hop: 'ingested',
    at: iso(Number.isFinite(firstDispatch) ? firstDispatch : null),
    detail: m.meta ? 'published to push.ingest and consumed by the dispatcher' : 'published to push.ingest (no dispatcher trace record yet)',
  };
}

function expiredHop(m: MessageFacts, recipients: TraceRecipient[]): TraceHop {
  const undelivered = recipients.filter((r) => !r.devices.some((d) => d.acked)).map((r) => r.user);
  return {
    hop: 'expired',
    at: iso(m.expiresAtMs),
    detail: `TTL passed${undelivered.length ? ` while undelivered to ${undelivered.slice(0, 10).join(', ')}` : ''}`,
  };
}

/** The summary state, from the most advanced fact. */
function stateOf(m: MessageFacts, f: TraceFacts, expired: boolean): TraceState {
  const all = [...f.devices.values()];
  const anyAcked = all.some((d) => d.acked);
  const allAcked = all.length > 0 && all.every((d) => d.acked);
  const waiting = [...f.recipients.values()].some((r) => r.outcome === 'offline' || (r.inInbox && !r.devices.some((d) => d.acked)));
  if (m.outboxed) return 'outbox';
  if (all.some((d) => d.parked) && !anyAcked) return 'parked';
  if (expired && !allAcked && !anyAcked) return 'expired';
  if (allAcked && !waiting) return 'acked';
  if (anyAcked) return waiting && !expired ? 'waiting-offline' : 'acked';
  if (all.some((d) => d.writtenBy.length > 0)) return 'delivered';
  if (waiting) return 'waiting-offline';
  if (f.counts['dropped-transient'] || f.counts.expired) return f.counts.expired ? 'expired' : 'dropped';
  return m.meta ? 'dispatched' : 'ingested';
}

const sortHops = (hops: TraceHop[]) => hops.sort((a, b) => (a.at && b.at && a.at !== b.at ? (a.at < b.at ? -1 : 1) : HOP_ORDER[a.hop] - HOP_ORDER[b.hop]));

/**
 * Where one message is, from the durable state: the message document and
 * outbox (store/messages.ts), the message's trace record (Redis: what the dispatcher
 * routed, what pushers wrote, acked, parked or dropped), the recipients'
 * deliveries and the devices' acks and attempts (store/deliveryStore.ts). Undefined when nothing
 * knows the id.
 */
export async function traceMessage(deps: TraceDeps, messageId: string, now = Date.now()): Promise<TraceReport | undefined> {
  const read = await readMessageFacts(deps, messageId);
  if (!read) return undefined;
  const { m, facts } = read;
  const f = new TraceFacts();
  f.hops.push(...storeHops(m));
  for (const u of m.msg?.users ?? []) f.recipient(u);
  for (const e of facts) f.add(e);
  const ingested = ingestedHop(m, f.firstDispatch);
  if (ingested) f.hops.push(ingested);
  await f.addDurable(deps.store, m.app, messageId, m.persistent === true && m.target === 'USER');

  const expired = m.expiresAtMs <= now;
  const all = [...f.devices.values()];
  const allAcked = all.length > 0 && all.every((d) => d.acked);
  if (expired && !allAcked) f.hops.push(expiredHop(m, [...f.recipients.values()]));
  const state = stateOf(m, f, expired);
  return {
    messageId,
    traceId: m.msg?.traceId ?? m.meta?.traceId ?? null,
    app: m.app || null,
    target: m.target,
    group: m.msg?.group ?? m.meta?.group ?? null,
    taskId: m.msg?.taskId ?? m.meta?.taskId ?? null,
    persistent: m.persistent,
    createdAt: iso(m.createdAtMs),
    expiresAt: iso(m.expiresAtMs),
    expired,
    state,
    traced: m.meta !== undefined,
    counts: f.counts,
    recipients: [...f.recipients.values()],
    hops: sortHops(f.hops),
  };
}
