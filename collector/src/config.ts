import { envBool, envInt, envPort, loadCommonConfig, type CommonConfig, type Env } from '../../common/src/config.js';

export interface CollectorConfig extends CommonConfig {
  port: number;
  /** Largest accepted request body (room for a 10,000-user list). Default 1 MiB. */
  maxBodyBytes: number;
  /** Partitions of push.ingest when the collector creates it. Default 8. */
  ingestPartitions: number;
  /** How long a submission waits for Kafka before a persistent one is left to the outbox (transient: 503). Default 2000 ms. */
  publishTimeoutMs: number;
  /** push.events: refuse (dead-letter) records without a valid app signature. Default true in production mode, false in development. */
  eventsRequireSignature: boolean;
  /** push.events: attempts at a record after an infrastructure failure before its partition is paused. Default 5. */
  eventsRetries: number;
  /** push.events: first backoff between those attempts, doubling up to 5 s. Default 200 ms. */
  eventsRetryBackoffMs: number;
  /** push.events: how long a partition stays paused once its retries are used up, before it is read again. Default 30000 ms. */
  eventsPauseMs: number;
}

export function loadConfig(env: Env): CollectorConfig {
  const common = loadCommonConfig(env);
  return {
    ...common,
    port: envPort(env, 'COLLECTOR_PORT', 8080),
    maxBodyBytes: envInt(env, 'COLLECTOR_MAX_BODY_BYTES', 1 << 20, { min: 1024, max: 16 * 1024 * 1024 }),
    ingestPartitions: envInt(env, 'INGEST_PARTITIONS', 8, { min: 1, max: 1024 }),
    publishTimeoutMs: envInt(env, 'COLLECTOR_PUBLISH_TIMEOUT_MS', 2000, { min: 100, max: 60_000 }),
    eventsRequireSignature: envBool(env, 'EVENTS_REQUIRE_SIGNATURE', common.mode === 'production'),
    eventsRetries: envInt(env, 'EVENTS_RETRIES', 5, { min: 1, max: 100 }),
    eventsRetryBackoffMs: envInt(env, 'EVENTS_RETRY_BACKOFF_MS', 200, { min: 10, max: 5000 }),
    eventsPauseMs: envInt(env, 'EVENTS_PAUSE_MS', 30_000, { min: 100, max: 600_000 }),
  };
}
