/** Messages between the bench process and its load generator processes (over the fork IPC channel). */
import type { JWK } from 'jose';

/** Clients `from .. from+count-1` of a scenario; client i is user `${userPrefix}${i}`, device `d`. */
export interface ClientRange {
  userPrefix: string;
  from: number;
  count: number;
  /** Pusher WebSocket URLs; client i connects to `urls[i % urls.length]`. */
  urls: string[];
}

export interface InitCommand {
  cmd: 'init';
  req: number;
  app: string;
  kid: string;
  privateJwk: JWK;
  /** Source addresses to spread clients over (127.0.0.x); client i uses `addresses[floor(i / perAddress) % length]`. */
  addresses: string[];
  perAddress: number;
}

export type ParentCommand =
  | InitCommand
  | { cmd: 'connect'; req: number; range: ClientRange; concurrency: number; timeoutMs: number }
  /** Starts latency recording: resets counters, histograms and the seen set. */
  | { cmd: 'record'; req: number; label: string }
  /** Distinct deliveries recorded so far, without ending the recording. */
  | { cmd: 'peek'; req: number }
  /** Ends recording and returns what was received since `record`. */
  | { cmd: 'collect'; req: number }
  /** Closes `fraction` of this worker's open clients (every k-th), keeping them away until `reconnect`. */
  | { cmd: 'drop'; req: number; fraction: number }
  /** Marks this worker's clients of `url` that lost their socket (their server died) as away. */
  | { cmd: 'orphans'; req: number; url: string }
  /** Reconnects every away client; those whose server is not in `urls` (when given) move to one that is. */
  | { cmd: 'reconnect'; req: number; concurrency: number; timeoutMs: number; urls?: string[] }
  | { cmd: 'stats'; req: number }
  | { cmd: 'close'; req: number };

export interface ConnectResult {
  ok: number;
  /** Clients still not connected after their last attempt. */
  failed: number;
  ms: number;
  /** Why the last attempt of each failed client failed. */
  errors: Record<string, number>;
  /** Attempts that failed and were retried (like an SDK would), by reason. */
  retried: Record<string, number>;
}

export interface CollectResult {
  /** Encoded LatencyHistogram of submit-to-receipt latency. */
  histogram: string;
  /** Distinct (message, client) deliveries. */
  unique: number;
  duplicates: number;
  /** Message frames without a bench payload (`t`). */
  foreign: number;
  acksSent: number;
  /** Deliveries per second since `record` (index = whole seconds). */
  perSecond: number[];
  /** Wall-clock time of the last recorded receipt (0 if none). */
  lastReceiptAt: number;
}

export interface WorkerStats {
  open: number;
  connecting: number;
  closedUnexpectedly: number;
  closeCodes: Record<string, number>;
  rssBytes: number;
}

/** A per-second latency snapshot while recording (sent unprompted, once a second). */
export interface TickReport {
  type: 'tick';
  label: string;
  second: number;
  histogram: string;
}

export type WorkerReply = { type: 'reply'; req: number; ok: true; data: unknown } | { type: 'reply'; req: number; ok: false; error: string } | TickReport;

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes on one machine. */
export const nowMs = (): number => performance.timeOrigin + performance.now();

/** A command without its request number (the caller adds it). */
export type Command = ParentCommand extends infer C ? (C extends unknown ? Omit<C, 'req'> : never) : never;
