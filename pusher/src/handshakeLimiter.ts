import { isIP } from 'node:net';

/** Source addresses tracked at once; past this the least recently seen is forgotten (it starts again with a full bucket). */
const MAX_TRACKED_ADDRESSES = 100_000;

export interface HandshakeLimiterOptions {
  /** Handshakes per second per source (refill); 0 turns the limiter off. */
  rate: number;
  /** Bucket size: handshakes a source may make at once. */
  burst: number;
  /** `loopback` and/or exact addresses that are never limited (a local proxy, the bench's loopback clients). */
  exempt: string[];
  now?: () => number;
}

export type HandshakeVerdict = { ok: true } | { ok: false; retryAfterSeconds: number };

/**
 * What the limiter counts for an address: IPv4 as is, IPv6 by its /64 (one
 * host usually holds a whole /64, so counting single v6 addresses would not
 * limit anyone). IPv4-mapped IPv6 (`::ffff:1.2.3.4`) counts as the IPv4.
 */
export function sourceKey(address: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1]!;
  if (isIP(address) !== 6) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}

export function isLoopback(address: string): boolean {
  return address === '::1' || /^(::ffff:)?127\./i.test(address);
}

/**
 * Token bucket per source address for WebSocket handshakes, checked before
 * the token is verified: a handshake costs a signature check, Redis writes
 * and a store read, so one address must not be able to make them at any rate.
 * Bounded: at most MAX_TRACKED_ADDRESSES buckets (a Map in least-recently-seen
 * order, so eviction drops the coldest).
 */
export function createHandshakeLimiter({ rate, burst, exempt, now = Date.now }: HandshakeLimiterOptions) {
  const exemptLoopback = exempt.includes('loopback');
  const exemptExact = new Set(exempt.filter((a) => a !== 'loopback').map(sourceKey));
  const buckets = new Map<string, { tokens: number; at: number }>();

  return {
    take(address: string | undefined): HandshakeVerdict {
      if (rate <= 0 || !address) return { ok: true };
      if (exemptLoopback && isLoopback(address)) return { ok: true };
      const key = sourceKey(address);
      if (exemptExact.has(key)) return { ok: true };
      const t = now();
      const b = buckets.get(key);
      let tokens = burst;
      if (b) {
        tokens = Math.min(burst, b.tokens + ((t - b.at) / 1000) * rate);
        buckets.delete(key); // re-inserted below: the Map stays in least-recently-seen order
      } else if (buckets.size >= MAX_TRACKED_ADDRESSES) {
        buckets.delete(buckets.keys().next().value!);
      }
      if (tokens < 1) {
        buckets.set(key, { tokens, at: t });
        return { ok: false, retryAfterSeconds: Math.max(1, Math.ceil((1 - tokens) / rate)) };
      }
      buckets.set(key, { tokens: tokens - 1, at: t });
      return { ok: true };
    },
    /** Addresses tracked now (for tests and metrics). */
    get size() {
      return buckets.size;
    },
  };
}
