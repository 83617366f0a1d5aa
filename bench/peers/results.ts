/** What peers measures of one target, and how a publish run and the clients' receipts become it. */
import type { LatencySummary } from '../lib/histogram.js';
import { round } from '../lib/scenarioKit.js';
import type { Collected } from './clients.js';

export interface UnicastResult {
  offeredRate?: number;
  sent: number;
  accepted: number;
  errors: number;
  skipped: number;
  received: number;
  lost: number;
  deliveredPerSec: number;
  latency: LatencySummary;
  firstError?: string;
}

export interface SaturationLevel extends UnicastResult {
  /** Requests in flight. */
  concurrency: number;
  /** CPU cores used per role (servers, shared infra, publisher, client processes) while publishing. */
  cores: Record<string, number>;
}

export interface BroadcastResult {
  clients: number;
  runs: Array<{ received: number; ms50: number; ms99: number; ms100: number | null; deliveriesPerSec: number | null }>;
  /** Median over runs. */
  ms99: number;
  ms100: number | null;
  deliveriesPerSec: number | null;
}

export interface TargetResult {
  name: string;
  describe: string;
  error?: string;
  clients?: number;
  connected?: number;
  connectFailed?: number;
  /** Handshakes per second (tokens fetched beforehand). */
  connectPerSec?: number;
  tokenSeconds?: number;
  connectFirstError?: string;
  serverProcesses?: number;
  rssBeforeMB?: number;
  rssAfterMB?: number;
  rssPerConnKB?: number;
  heapPerConnKB?: number | null;
  fixed?: UnicastResult;
  /** The saturation level that delivered most. */
  saturation?: SaturationLevel;
  saturationLevels?: SaturationLevel[];
  broadcast?: BroadcastResult;
  saturationTimeline?: Array<[number, number]>;
  /** Mean unicast latency per 500 ms window at the fixed rate. */
  fixedLatencyTimeline?: Array<[number, number]>;
  broadcastCdf?: Array<[number, number]>;
}

export function unicastOf(
  pub: { sent: number; accepted: number; errors: number; skipped: number; startedAt: number; elapsedMs: number; firstError?: string },
  col: Collected,
  offeredRate?: number,
): UnicastResult {
  const spanMs = Math.max(pub.elapsedMs, col.lastAt - pub.startedAt);
  return {
    offeredRate,
    sent: pub.sent,
    accepted: pub.accepted,
    errors: pub.errors,
    skipped: pub.skipped,
    received: col.received,
    lost: Math.max(0, pub.accepted - col.received),
    deliveredPerSec: Math.round(col.received / (spanMs / 1000)),
    latency: col.hist.summary(),
    firstError: pub.firstError,
  };
}

/**
 * Over time, in 500 ms windows (x in seconds from `fromMs`): the delivery rate per second,
 * and the mean and max latency of the messages received in the window.
 */
export function timeSeries(col: Collected, fromMs: number): { rate: Array<[number, number]>; meanMs: Array<[number, number]>; maxMs: Array<[number, number]> } {
  const out = { rate: [] as Array<[number, number]>, meanMs: [] as Array<[number, number]>, maxMs: [] as Array<[number, number]> };
  const buckets = [...col.timeline].sort((a, b) => a[0] - b[0]);
  for (let i = 0; i < buckets.length; i += 5) {
    const slice = buckets.slice(i, i + 5);
    const x = Math.max(0, round((slice[0]![0] * 100 - fromMs) / 1000, 1));
    const count = slice.reduce((s, b) => s + b[1][0], 0);
    out.rate.push([x, (count * 10) / slice.length]);
    out.meanMs.push([x, round(slice.reduce((s, b) => s + b[1][1], 0) / count)]);
    out.maxMs.push([x, round(Math.max(...slice.map((b) => b[1][2])))]);
  }
  return out;
}
