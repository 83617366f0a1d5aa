import { MAX_ACK_IDS } from '../../protocol/codes.js';
import type { WebSocketConstructor } from './socket.js';

/** What `getToken` may return: a token, or a token with a fresh node list (auth's `POST /v1/tokens` answer fits). */
export type TokenGrant = string | { token: string; nodes?: string[] };

/** Something that fires `online` and `offline` events (a browser `window`). */
export interface ConnectivityTarget {
  addEventListener(type: 'online' | 'offline', listener: () => void): void;
  removeEventListener(type: 'online' | 'offline', listener: () => void): void;
}

export interface PushClientOptions {
  /** Connection token from auth's `POST /v1/tokens`. Required. */
  token: string;
  /** WebSocket URLs from the same answer, tried in order. Required, at least one. */
  nodes: string[];
  /** Called for a new token when the current one is expired or about to expire. Default: none (an expired token stops the client). */
  getToken?: () => Promise<TokenGrant> | TokenGrant;
  /** WebSocket class to use. Default `globalThis.WebSocket`; in Node pass `ws`'s `WebSocket`. */
  WebSocket?: WebSocketConstructor;
  /** `fetch` used for the `/v1/session` check after a failed connect. Default `globalThis.fetch`; without one the check is skipped. */
  fetch?: typeof globalThis.fetch;
  /** Source of `online`/`offline` events. Default `globalThis` when it has `addEventListener` (browsers), else none. */
  connectivity?: ConnectivityTarget | null;
  /** Interval between `{"type":"ping"}` frames. Default: the server's `heartbeatMs` from the welcome frame, else 25 000. */
  heartbeatMs?: number;
  /** The link is declared dead when no frame at all arrives for this long. Default: the ping interval + 10 000. */
  heartbeatTimeoutMs?: number;
  /** A socket that has not opened after this long counts as a failed attempt. Default 10 000. */
  connectTimeoutMs?: number;
  /** Reconnect delay: random(0, min(maxMs, minMs * 2^attempt)). Default `{ minMs: 500, maxMs: 30 000 }`. */
  backoff?: { minMs?: number; maxMs?: number };
  /** Ack persistent messages once every `message` listener has returned (or its promise resolved). Default true. */
  autoAck?: boolean;
  /** Longest time an ack waits to be batched with others. Default 100. */
  ackBatchMs?: number;
  /** Most ids in one ack frame; a full batch is sent at once. Default 100, at most 500 (the server's limit). */
  ackBatchMax?: number;
  /** How many recent message ids are remembered to drop duplicates. Default 1000. */
  dedupeSize?: number;
  /** `getToken` is called before connecting when the token expires within this long. Default 30 000. */
  tokenRefreshMarginMs?: number;
  /** Upstream `send()` calls kept while disconnected; beyond this `send()` returns false. Default 100. */
  maxQueuedSends?: number;
}

export interface ResolvedOptions {
  token: string;
  nodes: string[];
  getToken: (() => Promise<TokenGrant> | TokenGrant) | undefined;
  WebSocket: WebSocketConstructor;
  fetch: typeof globalThis.fetch | undefined;
  connectivity: ConnectivityTarget | undefined;
  heartbeatMs: number | undefined;
  heartbeatTimeoutMs: number | undefined;
  connectTimeoutMs: number;
  backoff: { minMs: number; maxMs: number };
  autoAck: boolean;
  ackBatchMs: number;
  ackBatchMax: number;
  dedupeSize: number;
  tokenRefreshMarginMs: number;
  maxQueuedSends: number;
}

/** Defaults, listed once. */
export const DEFAULTS = {
  heartbeatMs: 25_000,
  heartbeatGraceMs: 10_000,
  connectTimeoutMs: 10_000,
  backoff: { minMs: 500, maxMs: 30_000 },
  autoAck: true,
  ackBatchMs: 100,
  ackBatchMax: 100,
  dedupeSize: 1000,
  tokenRefreshMarginMs: 30_000,
  maxQueuedSends: 100,
} as const;

/** The server refuses ack frames with more ids than this. */
export { MAX_ACK_IDS };

export class PushOptionsError extends TypeError {
  constructor(message: string) {
    super(`PushClient: ${message}`);
    this.name = 'PushOptionsError';
  }
}

function positiveInt(name: string, value: number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value <= 0) throw new PushOptionsError(`${name} must be a positive integer, got ${String(value)}`);
  return value;
}

function optionalPositiveInt(name: string, value: number | undefined): number | undefined {
  return value === undefined ? undefined : positiveInt(name, value, 0);
}

function defaultConnectivity(): ConnectivityTarget | undefined {
  const g = globalThis as Partial<ConnectivityTarget>;
  return typeof g.addEventListener === 'function' && typeof g.removeEventListener === 'function' ? (g as ConnectivityTarget) : undefined;
}

/** Applies the defaults and throws a `PushOptionsError` naming the option on anything invalid. */
export function resolveOptions(o: PushClientOptions): ResolvedOptions {
  if (typeof o !== 'object' || o === null) throw new PushOptionsError('options object is required');
  if (typeof o.token !== 'string' || o.token === '') throw new PushOptionsError('token must be a non-empty string');
  if (!Array.isArray(o.nodes) || o.nodes.length === 0) throw new PushOptionsError('nodes must be a non-empty array of ws:// or wss:// URLs');
  for (const n of o.nodes) {
    if (typeof n !== 'string' || !/^wss?:\/\/[^/?#]/.test(n)) throw new PushOptionsError(`nodes: ${JSON.stringify(n)} is not a ws:// or wss:// URL`);
  }
  if (o.getToken !== undefined && typeof o.getToken !== 'function') throw new PushOptionsError('getToken must be a function');
  const WebSocketClass = o.WebSocket ?? (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket;
  if (typeof WebSocketClass !== 'function')
    throw new PushOptionsError("no WebSocket implementation: pass the WebSocket option (in Node, the `ws` package's WebSocket)");

  const heartbeatMs = optionalPositiveInt('heartbeatMs', o.heartbeatMs);
  const heartbeatTimeoutMs = optionalPositiveInt('heartbeatTimeoutMs', o.heartbeatTimeoutMs);
  if (heartbeatMs !== undefined && heartbeatTimeoutMs !== undefined && heartbeatTimeoutMs <= heartbeatMs) {
    throw new PushOptionsError(
      `heartbeatTimeoutMs (${heartbeatTimeoutMs}) must be larger than heartbeatMs (${heartbeatMs}), or every pong would come too late`,
    );
  }
  const minMs = positiveInt('backoff.minMs', o.backoff?.minMs, DEFAULTS.backoff.minMs);
  const maxMs = positiveInt('backoff.maxMs', o.backoff?.maxMs, Math.max(DEFAULTS.backoff.maxMs, minMs));
  if (maxMs < minMs) throw new PushOptionsError(`backoff.maxMs (${maxMs}) must not be smaller than backoff.minMs (${minMs})`);
  const autoAck = o.autoAck ?? DEFAULTS.autoAck;
  if (typeof autoAck !== 'boolean') throw new PushOptionsError('autoAck must be a boolean');
  const ackBatchMax = positiveInt('ackBatchMax', o.ackBatchMax, DEFAULTS.ackBatchMax);
  if (ackBatchMax > MAX_ACK_IDS) throw new PushOptionsError(`ackBatchMax must be at most ${MAX_ACK_IDS} (the server's limit per ack frame)`);
  const dedupeSize = positiveInt('dedupeSize', o.dedupeSize, DEFAULTS.dedupeSize);
  if (o.fetch !== undefined && typeof o.fetch !== 'function') throw new PushOptionsError('fetch must be a function');
  const tokenRefreshMarginMs = o.tokenRefreshMarginMs ?? DEFAULTS.tokenRefreshMarginMs;
  if (!Number.isInteger(tokenRefreshMarginMs) || tokenRefreshMarginMs < 0) throw new PushOptionsError('tokenRefreshMarginMs must be an integer >= 0');

  return {
    token: o.token,
    nodes: [...o.nodes],
    getToken: o.getToken,
    WebSocket: WebSocketClass,
    fetch: o.fetch ?? (typeof globalThis.fetch === 'function' ? globalThis.fetch.bind(globalThis) : undefined),
    connectivity: o.connectivity === null ? undefined : (o.connectivity ?? defaultConnectivity()),
    heartbeatMs,
    heartbeatTimeoutMs,
    connectTimeoutMs: positiveInt('connectTimeoutMs', o.connectTimeoutMs, DEFAULTS.connectTimeoutMs),
    backoff: { minMs, maxMs },
    autoAck,
    ackBatchMs: positiveInt('ackBatchMs', o.ackBatchMs, DEFAULTS.ackBatchMs),
    ackBatchMax,
    dedupeSize,
    tokenRefreshMarginMs,
    maxQueuedSends: positiveInt('maxQueuedSends', o.maxQueuedSends, DEFAULTS.maxQueuedSends),
  };
}
