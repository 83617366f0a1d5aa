/** How many failed operator authentications a source address may make, and over how long. */
export interface OperatorAuthLimits {
  /** Failures within `windowMs` after which the address is refused (429) until the window ends. */
  maxFailures: number;
  windowMs: number;
}

/** OPERATOR_AUTH_MAX_FAILURES / OPERATOR_AUTH_WINDOW_SECONDS defaults. */
export const DEFAULT_OPERATOR_AUTH_LIMITS: OperatorAuthLimits = { maxFailures: 10, windowMs: 60_000 };

/** Addresses tracked at once; past it expired entries go first, then the oldest. */
const MAX_TRACKED = 10_000;

export interface OperatorAuthThrottle {
  /** Milliseconds this address must still wait, or 0 when it may try. */
  blockedFor(address: string, now?: number): number;
  /** Counts a failure; the next request from the address waits once `maxFailures` are reached. */
  failed(address: string, now?: number): void;
  /** A correct key from an address that is not blocked clears its failures. */
  succeeded(address: string): void;
}

/**
 * Failed operator authentications per source address, in fixed windows that
 * start at an address's first failure: after `maxFailures` in one window the
 * address is refused, whatever key it sends, until the window ends. Guessing
 * the operator key from one address is then limited to `maxFailures` per
 * window. In memory, per process: each service (and each replica) counts on
 * its own, which bounds guesses per address to that many times the replicas.
 */
export function createOperatorAuthThrottle(limits: OperatorAuthLimits = DEFAULT_OPERATOR_AUTH_LIMITS): OperatorAuthThrottle {
  const entries = new Map<string, { count: number; since: number }>();
  const live = (address: string, now: number) => {
    const e = entries.get(address);
    if (e && now - e.since >= limits.windowMs) {
      entries.delete(address);
      return undefined;
    }
    return e;
  };
  const makeRoom = (now: number) => {
    if (entries.size < MAX_TRACKED) return;
    for (const [a, e] of entries) if (now - e.since >= limits.windowMs) entries.delete(a);
    while (entries.size >= MAX_TRACKED) entries.delete(entries.keys().next().value!);
  };
  const wait = (e: { count: number; since: number } | undefined, now: number) =>
    e && e.count >= limits.maxFailures ? Math.max(1, e.since + limits.windowMs - now) : 0;
  return {
    blockedFor(address, now = Date.now()) {
      return wait(live(address, now), now);
    },
    failed(address, now = Date.now()) {
      let e = live(address, now);
      if (!e) {
        makeRoom(now);
        entries.set(address, (e = { count: 0, since: now }));
      }
      e.count++;
    },
    succeeded(address) {
      entries.delete(address);
    },
  };
}
