/**
 * The facts a message's trace record holds (layout in traceRecords.ts), as
 * typed values: services note facts, the trace report reads them back, and
 * neither builds or splits a field name itself.
 */

/** What the dispatcher did with a message for one recipient. */
export type DispatchOutcome = 'forwarded' | 'offline' | 'dropped-transient' | 'expired';

export type TraceFact =
  /** The dispatcher routed it for one recipient (`user`, `#all` or `#g:<group>`). */
  | { kind: 'routed'; recipient: string; at: number; outcome: DispatchOutcome; nodes: string[] }
  /** How many recipients had this outcome (counted past the per-message cap of named ones). */
  | { kind: 'counted'; outcome: string; n: number }
  /** A pusher wrote it to a device's socket, live or when the device resumed. */
  | { kind: 'written'; nodeId: string; user: string; device: string; at: number; path: 'live' | 'resume' }
  /** The device acknowledged it. */
  | { kind: 'acked'; user: string; device: string; at: number }
  /** Delivery attempts to the device ran out: parked, not sent again. */
  | { kind: 'parked'; user: string; device: string; at: number }
  /** A pusher dropped it (expired, not connected, slow consumer). */
  | { kind: 'dropped'; nodeId: string; reason: string; at: number };

/** A fact written as a field of the trace hash (counts are a field and an increment). */
export interface TraceEntry {
  field: string;
  value: string;
}

/** The field a recipient count lives in (incremented, never set). */
export const countField = (outcome: DispatchOutcome): string => `n:${outcome}`;

/** A fact as the field and value stored in the trace record. */
export function traceEntry(fact: Exclude<TraceFact, { kind: 'counted' }>): TraceEntry {
  switch (fact.kind) {
    case 'routed':
      return { field: `r:${fact.recipient}`, value: JSON.stringify({ at: fact.at, outcome: fact.outcome, nodes: fact.nodes }) };
    case 'written':
      return { field: `w:${fact.nodeId}|${fact.user}|${fact.device}`, value: `{"at":${fact.at},"path":"${fact.path}"}` };
    case 'acked':
      return { field: `a:${fact.user}|${fact.device}`, value: String(fact.at) };
    case 'parked':
      return { field: `p:${fact.user}|${fact.device}`, value: String(fact.at) };
    case 'dropped':
      return { field: `x:${fact.nodeId}|${fact.reason}`, value: String(fact.at) };
  }
}

const json = <T>(s: string): T | undefined => {
  try {
    return JSON.parse(s) as T;
  } catch {
    return undefined;
  }
};

/** A stored field read back as a fact; undefined for `meta` and for anything it cannot read. */
export function parseTraceEntry(field: string, value: string): TraceFact | undefined {
  const colon = field.indexOf(':');
  if (colon < 0) return undefined;
  const kind = field.slice(0, colon);
  const rest = field.slice(colon + 1);
  const [a = '', b = '', c = ''] = rest.split('|');
  switch (kind) {
    case 'n':
      return { kind: 'counted', outcome: rest, n: Number(value) };
    case 'r': {
      const v = json<{ at: number; outcome: DispatchOutcome; nodes: string[] }>(value);
      return v ? { kind: 'routed', recipient: rest, at: v.at, outcome: v.outcome, nodes: v.nodes } : undefined;
    }
    case 'w': {
      const v = json<{ at: number; path: 'live' | 'resume' }>(value);
      return { kind: 'written', nodeId: a, user: b, device: c, at: v?.at ?? NaN, path: v?.path ?? 'live' };
    }
    case 'a':
      return { kind: 'acked', user: a, device: b, at: Number(value) };
    case 'p':
      return { kind: 'parked', user: a, device: b, at: Number(value) };
    case 'x':
      return { kind: 'dropped', nodeId: a, reason: b, at: Number(value) };
    default:
      return undefined;
  }
}
