import { envBool, envInt, envPort, loadCommonConfig, type CommonConfig, type Env } from '../../platform/config.js';

export interface CollectorConfig extends CommonConfig {
  port: number;
  /** Largest accepted request body (room for a 10,000-user list). Default 1 MiB. */
  maxBodyBytes: number;
  /** Partitions of push.ingest when the collector creates it. Default 8. */
  ingestPartitions: number;
  /** How long a submission waits for Kafka before a persistent one is left to the outbox (transient: 503). Default 2000 ms. */
  publishTimeoutMs: number;
  /** Bytes of records in one Kafka produce request (bigger publishes are split; a bigger record is refused). Default 524288. */
  kafkaMaxRequestBytes: number;
  /** Bytes of ingest records waiting for Kafka before submissions are refused with 503. Default 64 MiB. */
  publishQueueBytes: number;
  /** Bytes of ingest records one message may fan out to (recipients x record size); over it: 413 FANOUT_TOO_LARGE. Default 16 MiB. */
  maxFanoutBytes: number;
  /**
   * Percent of the publish queue (records and bytes) one app may hold while it has anything
   * else waiting; past it that app's transient messages get 503 and its persistent ones are
   * stored for the outbox, while other apps keep the rest of the queue. Default 50.
   */
  appQueueSharePercent: number;
  /** How long the first persistent message of a store batch waits for company. Default 2 ms. */
  storeLingerMs: number;
  /** Persistent messages stored in one batch (one insertMany and one outbox entry) at most. Default 500. */
  storeBatch: number;
  /** Outbox sweep period. Default 2000 ms. */
  outboxIntervalMs: number;
  /** Outbox entries read per step of a sweep. Default 200. */
  outboxBatch: number;
  /** push.events: refuse (dead-letter) records without a valid app signature. Default true in production mode, false in development. */
  eventsRequireSignature: boolean;
  /** push.events: attempts at a record after an infrastructure failure before its partition is paused. Default 5. */
  eventsRetries: number;
  /** push.events: first backoff between those attempts, doubling up to 5 s. Default 200 ms. */
  eventsRetryBackoffMs: number;
  /** push.events: how long a partition stays paused once its retries are used up, before it is read again. Default 30000 ms. */
  eventsPauseMs: number;
  /** How long an idempotency key is remembered (push.events keys: at least as long as their message lives). Default 86400 s. */
  idempotencyWindowSeconds: number;
}

export function loadConfig(env: Env): CollectorConfig {
  const common = loadCommonConfig(env);
  return {
    ...common,
    port: envPort(env, 'COLLECTOR_PORT', 8080),
    maxBodyBytes: envInt(env, 'COLLECTOR_MAX_BODY_BYTES', 1 << 20, { min: 1024, max: 16 * 1024 * 1024 }),
    ingestPartitions: envInt(env, 'INGEST_PARTITIONS', 8, { min: 1, max: 1024 }),
    publishTimeoutMs: envInt(env, 'COLLECTOR_PUBLISH_TIMEOUT_MS', 2000, { min: 100, max: 60_000 }),
    ...publishLimits(env),
    appQueueSharePercent: envInt(env, 'COLLECTOR_APP_QUEUE_SHARE', 50, { min: 1, max: 100 }),
    storeLingerMs: envInt(env, 'COLLECTOR_STORE_LINGER_MS', 2, { min: 0, max: 100 }),
    storeBatch: envInt(env, 'COLLECTOR_STORE_BATCH', 500, { min: 1, max: 5000 }),
    outboxIntervalMs: envInt(env, 'COLLECTOR_OUTBOX_INTERVAL_MS', 2000, { min: 100, max: 60_000 }),
    outboxBatch: envInt(env, 'COLLECTOR_OUTBOX_BATCH', 200, { min: 1, max: 5000 }),
    eventsRequireSignature: envBool(env, 'EVENTS_REQUIRE_SIGNATURE', common.mode === 'production'),
    eventsRetries: envInt(env, 'EVENTS_RETRIES', 5, { min: 1, max: 100 }),
    eventsRetryBackoffMs: envInt(env, 'EVENTS_RETRY_BACKOFF_MS', 200, { min: 10, max: 5000 }),
    eventsPauseMs: envInt(env, 'EVENTS_PAUSE_MS', 30_000, { min: 100, max: 600_000 }),
    idempotencyWindowSeconds: envInt(env, 'IDEMPOTENCY_WINDOW_SECONDS', 86_400, { min: 1, max: 30 * 86_400 }),
  };
}

/** One message's records must fit the publish queue, or it could never be published. */
function publishLimits(env: Env): Pick<CollectorConfig, 'kafkaMaxRequestBytes' | 'publishQueueBytes' | 'maxFanoutBytes'> {
  const kafkaMaxRequestBytes = envInt(env, 'KAFKA_MAX_REQUEST_BYTES', 512 * 1024, { min: 16 * 1024, max: 64 * 1024 * 1024 });
  const publishQueueBytes = envInt(env, 'COLLECTOR_PUBLISH_QUEUE_BYTES', Math.max(64 * 1024 * 1024, kafkaMaxRequestBytes), {
    min: Math.max(1024 * 1024, kafkaMaxRequestBytes),
    max: 2 ** 31,
  });
  const fanoutDefault = Math.max(kafkaMaxRequestBytes, Math.min(16 * 1024 * 1024, publishQueueBytes));
  const maxFanoutBytes = envInt(env, 'COLLECTOR_MAX_FANOUT_BYTES', fanoutDefault, { min: kafkaMaxRequestBytes, max: publishQueueBytes });
  return { kafkaMaxRequestBytes, publishQueueBytes, maxFanoutBytes };
}
