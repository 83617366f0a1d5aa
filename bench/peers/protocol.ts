/** Messages between a benchmark and its load-generator children (IPC), and the shared clock. */

/** Which server a client or publisher talks to: our pusher, a peer, or the bare `ws` server of `limit`. */
export type TargetKind = 'ours' | 'socketio' | 'centrifugo' | 'bare';

/** Wall-clock milliseconds with sub-millisecond resolution, comparable between processes on one machine (the one clock of every load generator). */
export { nowMs } from '../lib/loadgenProtocol.js';

/** What every published message carries: submission time, sequence number, broadcast flag, padding. */
export interface BenchPayload {
  t: number;
  /** Publish run: clients count only the run they were reset for. */
  r: number;
  s: number;
  b?: 1;
  p: string;
}

/** ~100 bytes of payload on the wire, the same for every target. */
export const PADDING = 'x'.repeat(48);

export interface ConnectCmd {
  /** prepare: fetch tokens (ours) and answer `prepared`; connect: open the connections. */
  cmd: 'connect' | 'prepare';
  kind: TargetKind;
  /** One WebSocket (or Socket.IO) URL per server process. */
  endpoints: string[];
  /** [user id, index into endpoints] per client. */
  clients: Array<[string, number]>;
  /** Connections opened at once by this process. */
  concurrency: number;
  /** Loopback source addresses to spread the clients over. */
  localAddresses: string[];
  /** ours: where to get tokens, with which app key. */
  authUrl?: string;
  apiKey?: string;
  /** centrifugo: HMAC secret for connection tokens. */
  hmacSecret?: string;
  timeoutMs: number;
}

export interface ConnectedEv {
  ev: 'connected';
  ok: number;
  failed: number;
  failedIds: string[];
  firstError?: string;
  ms: number;
}

export interface StatsEv {
  ev: 'stats';
  /** Unicast messages received since the last reset. */
  received: number;
  /** HDR histogram (encoded) of unicast latencies since the last reset. */
  hist: string;
  /** Broadcast latencies (ms from submission) since the last reset. */
  arrivals: number[];
  /** [100 ms bucket of wall time, messages received in it, sum of their latencies (ms), max latency (ms)]. */
  timeline: Array<[number, number, number, number]>;
  firstAt: number;
  lastAt: number;
  /** Connections that closed while the benchmark still wanted them. */
  dropped: number;
}

export interface PublishCmd {
  cmd: 'run';
  /** Stamped into every payload (see ClientPool.reset). */
  run: number;
  kind: TargetKind;
  mode: 'rate' | 'saturate' | 'broadcast';
  /** Unicast: one URL per server (round robin); broadcast: the first is used. */
  urls: string[];
  headers: Record<string, string>;
  /** Recipients, chosen at random per message. */
  users: string[];
  rate: number;
  durationMs: number;
  /** Requests in flight at most (saturate: exactly). */
  concurrency: number;
}

export interface PublishedEv {
  ev: 'published';
  sent: number;
  accepted: number;
  errors: number;
  /** Rate mode: sends skipped because `concurrency` requests were already in flight. */
  skipped: number;
  firstError?: string;
  startedAt: number;
  elapsedMs: number;
}
