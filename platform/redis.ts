import { Redis } from 'ioredis';
import type { Logger } from './logger.js';

export type { Redis };

/**
 * An ioredis client that fails commands quickly while Redis is away instead
 * of queueing them without bound, and keeps reconnecting with capped backoff.
 */
export function createRedis(url: string, logger: Logger, name: string, keyPrefix = ''): Redis {
  const redis = new Redis(url, {
    keyPrefix,
    connectionName: name,
    connectTimeout: 2000,
    maxRetriesPerRequest: 1,
    enableAutoPipelining: true,
    retryStrategy: (times) => Math.min(100 * 2 ** Math.min(times, 5), 2000),
  });
  let lastError = '';
  redis.on('error', (err: Error) => {
    // ioredis repeats the same error on every reconnect attempt; log changes only.
    if (err.message !== lastError) logger.warn({ err: err.message, component: 'redis' }, 'redis error');
    lastError = err.message;
  });
  redis.on('ready', () => {
    lastError = '';
  });
  return redis;
}
