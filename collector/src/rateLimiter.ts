import type { Redis } from 'ioredis';
import type { App } from '../../store/apps.js';

/**
 * Two token buckets per app (requests and recipients), shared by every
 * collector through Redis and checked together in one script, so a request
 * either takes from both or from neither. Time comes from Redis, not from the
 * collectors' clocks. A bucket holds one second's worth; a single request
 * larger than that passes when the bucket is full and leaves it in debt.
 * Returns 0 when allowed, else the milliseconds to wait.
 */
const SCRIPT = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local wait = 0
local state = {}
for i = 1, #KEYS do
  local rate = tonumber(ARGV[i * 2 - 1])
  local cost = tonumber(ARGV[i * 2])
  local h = redis.call('HMGET', KEYS[i], 'tokens', 'ts')
  local tokens = tonumber(h[1]) or rate
  local ts = tonumber(h[2]) or now
  tokens = math.min(rate, tokens + (now - ts) * rate / 1000)
  local need = math.min(cost, rate)
  if tokens < need then wait = math.max(wait, math.ceil((need - tokens) * 1000 / rate)) end
  state[i] = tokens
end
for i = 1, #KEYS do
  local rate = tonumber(ARGV[i * 2 - 1])
  local tokens = state[i]
  if wait == 0 then tokens = tokens - tonumber(ARGV[i * 2]) end
  redis.call('HSET', KEYS[i], 'tokens', tokens, 'ts', now)
  redis.call('PEXPIRE', KEYS[i], 60000)
end
return wait
`;

export interface RateLimiter {
  /** Milliseconds to wait before retrying, or 0 when the request may go ahead. */
  take(app: App, recipients: number): Promise<number>;
}

type LimiterRedis = Redis & { pushRateTake(numKeys: number, ...args: (string | number)[]): Promise<number> };

export function createRateLimiter(redis: Redis, onError: (err: Error) => void): RateLimiter {
  // Sent by its SHA (EVALSHA, the body only once per connection): the body is ~1 KB on every request otherwise.
  const r = redis as LimiterRedis;
  if (typeof r.pushRateTake !== 'function') redis.defineCommand('pushRateTake', { lua: SCRIPT });
  return {
    async take(app, recipients) {
      const keys: string[] = [];
      const args: number[] = [];
      if (app.limits.requestsPerSecond > 0) {
        keys.push(`push:rl:${app._id}:req`);
        args.push(app.limits.requestsPerSecond, 1);
      }
      if (app.limits.recipientsPerSecond > 0) {
        keys.push(`push:rl:${app._id}:rcpt`);
        args.push(app.limits.recipientsPerSecond, recipients);
      }
      if (keys.length === 0) return 0;
      try {
        return Number(await r.pushRateTake(keys.length, ...keys, ...args));
      } catch (err) {
        // Limits protect downstream systems; losing Redis should not stop ingestion.
        onError(err as Error);
        return 0;
      }
    },
  };
}
