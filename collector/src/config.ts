import { envInt, envPort, loadCommonConfig, type CommonConfig, type Env } from '../../common/src/config.js';

export interface CollectorConfig extends CommonConfig {
  port: number;
  /** Largest accepted request body (room for a 10,000-user list). Default 1 MiB. */
  maxBodyBytes: number;
  /** Partitions of push.ingest when the collector creates it. Default 8. */
  ingestPartitions: number;
  /** How long a submission waits for Kafka before a persistent one is left to the outbox (transient: 503). Default 2000 ms. */
  publishTimeoutMs: number;
}

export function loadConfig(env: Env): CollectorConfig {
  return {
    ...loadCommonConfig(env),
    port: envPort(env, 'COLLECTOR_PORT', 8080),
    maxBodyBytes: envInt(env, 'COLLECTOR_MAX_BODY_BYTES', 1 << 20, { min: 1024, max: 16 * 1024 * 1024 }),
    ingestPartitions: envInt(env, 'INGEST_PARTITIONS', 8, { min: 1, max: 1024 }),
    publishTimeoutMs: envInt(env, 'COLLECTOR_PUBLISH_TIMEOUT_MS', 2000, { min: 100, max: 60_000 }),
  };
}
