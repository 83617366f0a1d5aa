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
  checks: Record<string, { ok: boolean; error?: string }>;
}

export async function runChecks(checks: DependencyCheck[]): Promise<ReadinessReport> {
  const results = await Promise.all(
    checks.map(async (c) => {
      try {
        await c.check();
        return [c.name, { ok: true }] as const;
      } catch (err) {
        return [c.name, { ok: false, error: (err as Error).message }] as const;
      }
    }),
  );
  return { ready: results.every(([, r]) => r.ok), checks: Object.fromEntries(results) };
}
