import { envInt, envPort, loadCommonConfig, type CommonConfig, type Env } from '../../platform/config.js';

export interface DispatcherConfig extends CommonConfig {
  /** Health, readiness and metrics (the operator API is the admin service's). Default 8083. */
  port: number;
  /** Partitions of push.ingest if the dispatcher creates it. Default 8. */
  ingestPartitions: number;
  /** Partitions of push.ingest processed at once. Default 4. */
  concurrency: number;
  /** Kafka consumer session timeout: how fast a dead dispatcher's partitions move. Default 10000 ms. */
  sessionTimeoutMs: number;
  /** How long the list of live pushers is cached. Default 1000 ms. */
  nodeCacheMs: number;
  /** Records handled and committed together within a fetched batch. Default 500. */
  sliceSize: number;
  /** Lifetime of a message's trace record in Redis; 0 turns tracing off. Default 3600 s. */
  traceTtlSeconds: number;
}

export function loadConfig(env: Env): DispatcherConfig {
  return {
    ...loadCommonConfig(env),
    port: envPort(env, 'DISPATCHER_METRICS_PORT', 8083),
    ingestPartitions: envInt(env, 'INGEST_PARTITIONS', 8, { min: 1, max: 1024 }),
    concurrency: envInt(env, 'DISPATCHER_CONCURRENCY', 4, { min: 1, max: 64 }),
    sessionTimeoutMs: envInt(env, 'DISPATCHER_SESSION_TIMEOUT_MS', 10_000, { min: 6000, max: 300_000 }),
    nodeCacheMs: envInt(env, 'DISPATCHER_NODE_CACHE_MS', 1000, { min: 0, max: 60_000 }),
    sliceSize: envInt(env, 'DISPATCHER_SLICE_SIZE', 500, { min: 1, max: 100_000 }),
    traceTtlSeconds: envInt(env, 'TRACE_TTL_SECONDS', 3600, { min: 0, max: 7 * 86_400 }),
  };
}
