import { randomUUID } from 'node:crypto';
import { fullJitterDelay } from '../../protocol/backoff.js';
import { PublishError } from './publishError.js';
import type { PushMessage, SubmitResult } from './pushMessage.js';

export interface PublisherOptions {
  /** Collector base URL, e.g. `http://127.0.0.1:8080`. Required. */
  collectorUrl: string;
  /** The app's API key. Required. */
  apiKey: string;
  /** Retries after the first request (network errors, timeouts, 503, 429, 409 IDEMPOTENCY_IN_PROGRESS). Default 3. */
  retries?: number;
  /** Per-request timeout; a timed-out request is retried. Default 5000. */
  timeoutMs?: number;
  /** Delay between retries without Retry-After: random(0, min(maxMs, minMs * 2^n)). Default `{ minMs: 100, maxMs: 2000 }`. */
  backoff?: { minMs?: number; maxMs?: number };
  /** A Retry-After longer than this is not waited for: the error is thrown instead. Default 30 000. */
  maxRetryAfterMs?: number;
  /** Default `globalThis.fetch`. */
  fetch?: typeof globalThis.fetch;
}

export interface Publisher {
  /** Submits a message; resolves with its id, or throws a `PublishError` once retrying cannot help. */
  send(message: PushMessage): Promise<SubmitResult>;
}

const DEFAULTS = { retries: 3, timeoutMs: 5000, backoff: { minMs: 100, maxMs: 2000 }, maxRetryAfterMs: 30_000 } as const;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function intOption(name: string, value: number | undefined, fallback: number, min: number): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < min) throw new TypeError(`createPublisher: ${name} must be an integer >= ${min}, got ${String(value)}`);
  return value;
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date. */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (value === null || value.trim() === '') return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

/** Whether the collector's answer means "try again": it promises nothing was stored, or the key is mid-flight. */
function isRetriable(status: number, code: string): boolean {
  return status === 503 || status === 429 || (status === 409 && code === 'IDEMPOTENCY_IN_PROGRESS');
}

/**
 * A typed client for `POST /v1/messages`. Each `send` carries one
 * idempotency key through all its retries, so a retry after a lost answer
 * returns the first id instead of storing the message twice.
 */
export function createPublisher(options: PublisherOptions): Publisher {
  let base: URL;
  try {
    base = new URL(options.collectorUrl);
  } catch {
    throw new TypeError(`createPublisher: collectorUrl ${JSON.stringify(options.collectorUrl)} is not a URL`);
  }
  if (typeof options.apiKey !== 'string' || options.apiKey === '') throw new TypeError('createPublisher: apiKey is required');
  const retries = intOption('retries', options.retries, DEFAULTS.retries, 0);
  const timeoutMs = intOption('timeoutMs', options.timeoutMs, DEFAULTS.timeoutMs, 1);
  const minMs = intOption('backoff.minMs', options.backoff?.minMs, DEFAULTS.backoff.minMs, 1);
  const maxMs = intOption('backoff.maxMs', options.backoff?.maxMs, Math.max(DEFAULTS.backoff.maxMs, minMs), minMs);
  const maxRetryAfterMs = intOption('maxRetryAfterMs', options.maxRetryAfterMs, DEFAULTS.maxRetryAfterMs, 0);
  const fetchFn = options.fetch ?? globalThis.fetch;
  const url = new URL('v1/messages', base.href.endsWith('/') ? base : `${base.href}/`).href;

  /** One request: the result, or the error plus how long the server asked us to wait. */
  const post = async (body: string): Promise<SubmitResult | { error: PublishError; retryAfterMs?: number }> => {
    let res: Response;
    try {
      res = await fetchFn(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${options.apiKey}`, 'content-type': 'application/json' },
        body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const timedOut = (err as Error)?.name === 'TimeoutError';
      return {
        error: new PublishError(
          timedOut ? 'TIMEOUT' : 'NETWORK_ERROR',
          timedOut ? `no answer within ${timeoutMs} ms` : `request failed: ${(err as Error)?.message}`,
          { retriable: true, cause: err },
        ),
      };
    }
    const text = await res.text().catch(() => '');
    let json: { id?: unknown; error?: { code?: unknown; message?: unknown; details?: unknown } } | undefined;
    try {
      json = text ? (JSON.parse(text) as typeof json) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status === 202 && typeof json?.id === 'string') return json as SubmitResult;
    const code = typeof json?.error?.code === 'string' ? json.error.code : res.status === 202 ? 'BAD_RESPONSE' : `HTTP_${res.status}`;
    const message = typeof json?.error?.message === 'string' ? json.error.message : `unexpected answer ${res.status}: ${text.slice(0, 200)}`;
    return {
      error: new PublishError(code, message, { status: res.status, retriable: isRetriable(res.status, code), details: json?.error?.details }),
      retryAfterMs: parseRetryAfter(res.headers.get('retry-after')),
    };
  };

  return {
    async send(message) {
      if (typeof message !== 'object' || message === null || message.payload === undefined || typeof message.to !== 'object') {
        throw new PublishError('INVALID_MESSAGE', 'a message needs `to` and `payload`');
      }
      const body = JSON.stringify({ ...message, idempotencyKey: message.idempotencyKey ?? randomUUID() });
      for (let attempt = 0; ; attempt++) {
        const outcome = await post(body);
        if (!('error' in outcome)) return outcome;
        const { error, retryAfterMs } = outcome;
        if (!error.retriable || attempt >= retries) throw error.withAttempts(attempt + 1);
        if (retryAfterMs !== undefined && retryAfterMs > maxRetryAfterMs) throw error.withAttempts(attempt + 1);
        await sleep(retryAfterMs ?? fullJitterDelay({ minMs, maxMs }, attempt));
      }
    },
  };
}
