/**
 * Exponential backoff with full jitter: the n-th delay (from 0) is uniform in
 * [0, min(maxMs, minMs * 2^n)]. Full jitter spreads a crowd of clients that
 * lost the same node over the whole window instead of letting them return in
 * waves. The retry schedule of the platform's clients: the browser SDK
 * reconnects with it and the HTTP publisher retries with it.
 */
export interface BackoffConfig {
  minMs: number;
  maxMs: number;
}

/** The upper bound of the delay before retry number `attempt` (0-based). */
export function backoffCap({ minMs, maxMs }: BackoffConfig, attempt: number): number {
  // 2^31 ms is past any sensible maxMs; capping the exponent avoids Infinity.
  return Math.min(maxMs, minMs * 2 ** Math.min(attempt, 31));
}

/** One delay for retry number `attempt`; `random` returns [0, 1) like Math.random. */
export function fullJitterDelay(config: BackoffConfig, attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * (backoffCap(config, attempt) + 1));
}

export interface Backoff {
  /** The delay before the next retry; each call counts one more attempt. */
  next(): number;
  /** After a success: the next delay starts from the smallest window again. */
  reset(): void;
  /** Retries counted since the last reset. */
  readonly attempt: number;
}

export function createBackoff(config: BackoffConfig, random: () => number = Math.random): Backoff {
  let attempt = 0;
  return {
    next: () => fullJitterDelay(config, attempt++, random),
    reset: () => {
      attempt = 0;
    },
    get attempt() {
      return attempt;
    },
  };
}
