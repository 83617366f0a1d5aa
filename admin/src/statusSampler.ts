import type { Redis } from 'ioredis';
import { liveNodes, type NodeInfo } from '../../store/nodeRegistry.js';
import { isLoopbackHost } from '../../platform/config.js';

/** One series of a Prometheus text exposition: labels and value. */
export interface PromSample {
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text format (the subset prom-client writes) into samples by metric name. */
export function parsePromText(text: string): Map<string, PromSample[]> {
  const out = new Map<string, PromSample[]>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^([A-Za-z_:][A-Za-z0-9_:]*)(\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[3] ?? '').matchAll(/([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    const value = m[4] === '+Inf' ? Infinity : Number(m[4]);
    let list = out.get(m[1]!);
    if (!list) out.set(m[1]!, (list = []));
    list.push({ labels, value });
  }
  return out;
}

/** Sum of a metric's samples whose labels match `where`. */
export function sumOf(metrics: Map<string, PromSample[]>, name: string, where: Record<string, string> = {}): number {
  let n = 0;
  for (const s of metrics.get(name) ?? []) if (Object.entries(where).every(([k, v]) => s.labels[k] === v)) n += s.value;
  return n;
}

/** Cumulative histogram buckets (le -> count) of a metric, summed over its series. */
export function bucketsOf(metrics: Map<string, PromSample[]>, name: string): Map<number, number> {
  const out = new Map<number, number>();
  for (const s of metrics.get(`${name}_bucket`) ?? []) {
    const le = s.labels.le === '+Inf' ? Infinity : Number(s.labels.le);
    out.set(le, (out.get(le) ?? 0) + s.value);
  }
  return out;
}

/** A quantile from cumulative bucket counts, interpolated within the bucket (as histogram_quantile does). */
export function quantileOf(buckets: Map<number, number>, q: number): number | null {
  const sorted = [...buckets.entries()].sort((a, b) => a[0] - b[0]);
  const total = sorted.at(-1)?.[1] ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  let prevLe = 0;
  let prevCount = 0;
  for (const [le, count] of sorted) {
    if (count >= rank) {
      if (le === Infinity) return prevLe;
      return prevLe + ((le - prevLe) * (rank - prevCount)) / Math.max(1, count - prevCount);
    }
    prevLe = le;
    prevCount = count;
  }
  return prevLe;
}

/** The HTTP base URL of a pusher: registered adminUrl, else derived from its WebSocket URL. */
export function nodeHttpUrl(node: NodeInfo): string {
  if (node.adminUrl) return node.adminUrl;
  const u = new URL(node.url);
  return `${u.protocol === 'wss:' ? 'https' : 'http'}://${u.host}`;
}

/**
 * Which node URLs the admin service may call. Node URLs come from Redis (each
 * pusher registers its own), so whoever can write Redis could otherwise point
 * the admin service's scrapes and drains (which carry the operator key) at any
 * host: only hosts in NODE_URL_ALLOWED_HOSTS are called. `loopback` stands for
 * 127.0.0.0/8, ::1 and localhost; `*` allows every host.
 */
export function createNodeUrlPolicy(allowedHosts: string[]): (url: string) => boolean {
  const any = allowedHosts.includes('*');
  const loopback = allowedHosts.includes('loopback');
  const hosts = new Set(allowedHosts.map(hostOnly));
  return (url) => {
    let host: string;
    try {
      const u = new URL(url);
      if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
      host = hostOnly(u.hostname);
    } catch {
      return false;
    }
    return any || hosts.has(host) || (loopback && isLoopbackHost(host));
  };
}

const hostOnly = (h: string) => h.toLowerCase().replace(/^\[|\]$/g, '');

export interface NodeCounters {
  connections: number;
  delivered: number;
  acked: number;
  dropped: number;
  up: boolean;
}

export interface Sample {
  at: number;
  nodes: Record<string, NodeCounters>;
  received: number;
  forwarded: number;
  latency: Map<number, number>;
}

export interface SeriesPoint {
  at: string;
  seconds: number;
  receivedPerSecond: number;
  forwardedPerSecond: number;
  deliveredPerSecond: number;
  ackedPerSecond: number;
  connections: number;
  latencyP50Ms: number | null;
  latencyP99Ms: number | null;
}

const delta = (a: number, b: number) => Math.max(0, b - a);

/** Rates between two consecutive samples (counter resets count as 0). */
export function pointBetween(a: Sample, b: Sample): SeriesPoint {
  const dt = Math.max(0.001, (b.at - a.at) / 1000);
  let delivered = 0;
  let acked = 0;
  let connections = 0;
  for (const [id, n] of Object.entries(b.nodes)) {
    const before = a.nodes[id];
    connections += n.connections;
    if (!before) continue;
    delivered += delta(before.delivered, n.delivered);
    acked += delta(before.acked, n.acked);
  }
  const latency = new Map<number, number>();
  for (const [le, count] of b.latency) latency.set(le, delta(a.latency.get(le) ?? 0, count));
  const ms = (v: number | null) => (v === null ? null : Math.round(v * 10_000) / 10);
  return {
    at: new Date(b.at).toISOString(),
    seconds: dt,
    receivedPerSecond: delta(a.received, b.received) / dt,
    forwardedPerSecond: delta(a.forwarded, b.forwarded) / dt,
    deliveredPerSecond: delivered / dt,
    ackedPerSecond: acked / dt,
    connections,
    latencyP50Ms: ms(quantileOf(latency, 0.5)),
    latencyP99Ms: ms(quantileOf(latency, 0.99)),
  };
}

export interface StatusSampler {
  /** The last minutes of throughput and latency, oldest first. */
  series(): SeriesPoint[];
  /** Per-node rates over the last sample interval. */
  nodeRates(): Map<string, { deliveredPerSecond: number; ackedPerSecond: number }>;
  latest(): Sample | undefined;
  sampleNow(): Promise<Sample>;
  close(): void;
}

/**
 * Samples the cluster every `intervalMs` for the dashboard's charts: each live
 * pusher's, the collector's and the dispatchers' /metrics.
 * Keeps `keep` samples (a ring), so memory is fixed; scrapes are bounded in
 * time and run one node at a time per worker, a few workers at once.
 */
export function createStatusSampler(deps: {
  redis: Redis;
  collectorUrl: string;
  /** Dispatchers whose `push_dispatched_total` makes the forwarded rate. */
  dispatcherUrls: string[];
  intervalMs: number;
  keep?: number;
  timeoutMs?: number;
  /** Node URLs the admin service may call (createNodeUrlPolicy); others count as down, unscraped. Default: any. */
  allowNodeUrl?: (url: string) => boolean;
}): StatusSampler {
  const { redis, collectorUrl, dispatcherUrls, intervalMs, keep = 120, timeoutMs = 2000, allowNodeUrl = () => true } = deps;
  const ring: Sample[] = [];
  const scrape = async (url: string) => {
    const res = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`${url}/metrics answered ${res.status}`);
    return parsePromText(await res.text());
  };

  const sampleNow = async (): Promise<Sample> => {
    const nodes = await liveNodes(redis).catch(() => [] as NodeInfo[]);
    const sample: Sample = { at: Date.now(), nodes: {}, received: 0, forwarded: 0, latency: new Map() };
    let next = 0;
    const worker = async () => {
      while (next < nodes.length) {
        const node = nodes[next++]!;
        try {
          const url = nodeHttpUrl(node);
          if (!allowNodeUrl(url)) throw new Error(`node URL ${url} is not allowed`);
          const m = await scrape(url);
          sample.nodes[node.id] = {
            connections: sumOf(m, 'push_connections'),
            delivered: sumOf(m, 'push_delivered_total'),
            acked: sumOf(m, 'push_acked_total'),
            dropped: sumOf(m, 'push_dropped_total'),
            up: true,
          };
          for (const [le, c] of bucketsOf(m, 'push_end_to_end_seconds')) sample.latency.set(le, (sample.latency.get(le) ?? 0) + c);
        } catch {
          sample.nodes[node.id] = { connections: node.connections, delivered: 0, acked: 0, dropped: 0, up: false };
        }
      }
    };
    await Promise.all([
      ...Array.from({ length: Math.min(8, nodes.length) }, worker),
      scrape(collectorUrl).then(
        (m) => (sample.received = sumOf(m, 'push_messages_received_total')),
        () => undefined,
      ),
      ...dispatcherUrls.map((url) =>
        scrape(url).then(
          (m) => (sample.forwarded += sumOf(m, 'push_dispatched_total', { outcome: 'forwarded' })),
          () => undefined,
        ),
      ),
    ]);
    ring.push(sample);
    if (ring.length > keep) ring.shift();
    return sample;
  };

  let running = false;
  const timer = setInterval(() => {
    if (running) return;
    running = true;
    void sampleNow()
      .catch(() => undefined) // a failed round leaves a gap in the series; the next one samples again
      .finally(() => (running = false));
  }, intervalMs);
  timer.unref();

  return {
    series() {
      const out: SeriesPoint[] = [];
      for (let i = 1; i < ring.length; i++) out.push(pointBetween(ring[i - 1]!, ring[i]!));
      return out;
    },
    nodeRates() {
      const out = new Map<string, { deliveredPerSecond: number; ackedPerSecond: number }>();
      const [a, b] = [ring.at(-2), ring.at(-1)];
      if (!a || !b) return out;
      const dt = Math.max(0.001, (b.at - a.at) / 1000);
      for (const [id, n] of Object.entries(b.nodes)) {
        const before = a.nodes[id];
        out.set(id, {
          deliveredPerSecond: before ? delta(before.delivered, n.delivered) / dt : 0,
          ackedPerSecond: before ? delta(before.acked, n.acked) / dt : 0,
        });
      }
      return out;
    },
    latest: () => ring.at(-1),
    sampleNow,
    close: () => clearInterval(timer),
  };
}
