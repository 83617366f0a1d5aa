import type { Admin } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { Db } from 'mongodb';
import { withTimeout } from './errors.js';

/** A readiness probe for one dependency; throws when it does not answer. */
export interface DependencyCheck {
  name: string;
  check(): Promise<void>;
}

const CHECK_TIMEOUT_MS = 1500;

export function kafkaCheck(admin: Admin): DependencyCheck {
  return {
    name: 'kafka',
    async check() {
      await withTimeout(admin.describeCluster(), CHECK_TIMEOUT_MS, 'kafka describeCluster');
    },
  };
}

export function redisCheck(redis: Redis): DependencyCheck {
  return {
    name: 'redis',
    async check() {
      if (redis.status !== 'ready') throw new Error(`redis connection is ${redis.status}`);
      await withTimeout(redis.ping(), CHECK_TIMEOUT_MS, 'redis ping');
    },
  };
}

export function mongoCheck(db: Db): DependencyCheck {
  return {
    name: 'mongo',
    async check() {
      await withTimeout(db.command({ ping: 1 }), CHECK_TIMEOUT_MS, 'mongo ping');
    },
  };
}

export interface ReadinessReport {
  ready: boolean;
  /** The last round of checks is older than it should be (the checks themselves are stuck). */
  stale?: boolean;
  checks: Record<string, { ok: boolean; error?: string }>;
}

export async function runChecks(checks: DependencyCheck[], timeoutMs = CHECK_TIMEOUT_MS): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async (c) => {
      try {
        // Bounded here too: a check may wait on a connect with its own, longer retries.
        await withTimeout(c.check(), timeoutMs, `${c.name} check`);
        return [c.name, { ok: true }] as const;
      } catch (err) {
        return [c.name, { ok: false, error: (err as Error).message }] as const;
      }
    }),
  );
  return { ready: results.every(([, r]) => r.ok), checks: Object.fromEntries(results) };
}

export interface CachedReadiness {
  /** The last round's report, at once: never waits on a dependency or on other work. */
  report(): ReadinessReport & { checkedAt: string | null; ageMs: number | null };
  /** Runs a round now (single flight) and resolves with it. */
  refresh(): Promise<ReadinessReport>;
  close(): void;
}

/**
 * Dependency state checked in the background, every `intervalMs`, each check
 * bounded by `timeoutMs`; `/readyz` answers from it. A probe therefore costs
 * nothing and answers in microseconds however busy the dependencies are, and a
 * dependency that stops answering shows within intervalMs + timeoutMs. A round
 * older than `staleMs` (the loop itself stalled) counts as not ready.
 */
export function createCachedReadiness(
  checks: DependencyCheck[],
  { intervalMs = 2000, timeoutMs = CHECK_TIMEOUT_MS, staleMs = 8000 }: { intervalMs?: number; timeoutMs?: number; staleMs?: number } = {},
): CachedReadiness {
  let last: ReadinessReport = { ready: false, checks: Object.fromEntries(checks.map((c) => [c.name, { ok: false, error: 'not checked yet' }])) };
  let checkedAt: number | undefined;
  let running: Promise<ReadinessReport> | undefined;
  const refresh = () =>
    (running ??= runChecks(checks, timeoutMs)
      .then((r) => {
        last = r;
        checkedAt = Date.now();
        return r;
      })
      .finally(() => {
        running = undefined;
      }));
  void refresh();
  const timer = setInterval(() => void refresh(), intervalMs);
  timer.unref();
  return {
    report() {
      const ageMs = checkedAt === undefined ? null : Date.now() - checkedAt;
      if (ageMs !== null && ageMs > staleMs) {
        return { ready: false, checks: last.checks, stale: true, checkedAt: new Date(checkedAt!).toISOString(), ageMs };
      }
      return { ...last, checkedAt: checkedAt === undefined ? null : new Date(checkedAt).toISOString(), ageMs };
    },
    refresh,
    close: () => clearInterval(timer),
  };
}
