import { envEnum, envInt, envIdentifier, envOptionalString, envPort, envString, envUrl, loadCommonConfig, type CommonConfig, type Env } from '../../common/src/config.js';

export interface PusherConfig extends CommonConfig {
  port: number;
  /** This node's id: names its Kafka topic and its Redis routes. Default `node-<port>`. */
  nodeId: string;
  /** Address clients are told to use for this node. Default `ws://<host>:<port>/v1/ws`. */
  publicUrl: string;
  /** Where the auth service publishes its token keys (JWKS). Default `http://127.0.0.1:8081`. */
  authUrl: string;
  /** Protocol ping interval; a client silent for two intervals is cut off. Default 25000 ms. */
  heartbeatMs: number;
  /**
   * Lifetime of a route (and of this node's entry in a group index) in Redis. Routes of a
   * running node count without refresh (its heartbeat proves it live); each is rewritten
   * once per half this TTL, spread over the heartbeats. Default 3600000 ms (1 hour).
   */
  routeTtlMs: number;
  /** Verified tokens remembered (until `exp`, at most 10 minutes) so reconnects skip the signature check; 0 turns it off. Default 10000. */
  tokenCacheSize: number;
  /** Bytes queued for one client before it is cut off as a slow consumer (4008). Default 1 MiB. */
  maxBufferedBytes: number;
  /** Largest frame a client may send. Default 65536 bytes. */
  maxFrameBytes: number;
  /** Frames per second a client may send (burst: 2x). Default 100. */
  frameRate: number;
  /** Deliveries on connect before an unacknowledged message is parked for that device. Default 10. */
  maxDeliveryAttempts: number;
  /** Offline messages loaded per page on connect. Default 200. */
  offlinePageSize: number;
  /** Live messages held per connection while its offline messages load. Default 1000. */
  maxPendingLive: number;
  /** Partitions of this node's topic. Default 2. */
  nodeTopicPartitions: number;
  /** How long a draining node waits for its clients to move before closing them. Default 5000 ms. */
  drainTimeoutMs: number;
  /** Upstream frames per second one connection may send (token bucket refill). Default 10. */
  upstreamRate: number;
  /** Upstream frames one connection may send in a burst (bucket size). Default 20. */
  upstreamBurst: number;
  /** Upstream frames refused for rate within 10 s that close the connection with 4029. Default 50. */
  upstreamMaxRefused: number;
  /** How long before its token's `exp` a connection gets a `token-expiring` frame. Default 30000 ms. */
  tokenWarningMs: number;
  /** Message traces (shared with the dispatcher): 0 stops this node annotating them. Default 3600 s. */
  traceTtlSeconds: number;
  /** Coalesce a connection's frames written in one event-loop turn into one socket write (`PUSHER_COALESCE=on|off`). Default on. */
  coalesce: boolean;
  /** Where operators and the status API reach this node over HTTP. Default http://<BIND_HOST or the public URL's host>:<port>. */
  adminUrl?: string;
}

export function loadConfig(env: Env): PusherConfig {
  const common = loadCommonConfig(env);
  const port = envPort(env, 'PUSHER_PORT', 8090);
  const heartbeatMs = envInt(env, 'PUSHER_HEARTBEAT_MS', 25_000, { min: 1000, max: 600_000 });
  return {
    ...common,
    port,
    nodeId: envIdentifier(env, 'NODE_ID', `node-${port}`),
    publicUrl: envString(env, 'PUSHER_PUBLIC_URL', `ws://${common.host}:${port}/v1/ws`),
    authUrl: envString(env, 'AUTH_URL', 'http://127.0.0.1:8081'),
    heartbeatMs,
    routeTtlMs: envInt(env, 'PUSHER_ROUTE_TTL_MS', Math.max(3_600_000, heartbeatMs * 2), { min: heartbeatMs * 2, max: 7 * 86_400_000 }),
    tokenCacheSize: envInt(env, 'PUSHER_TOKEN_CACHE_SIZE', 10_000, { min: 0, max: 1_000_000 }),
    maxBufferedBytes: envInt(env, 'PUSHER_MAX_BUFFERED_BYTES', 1 << 20, { min: 1024 }),
    maxFrameBytes: envInt(env, 'PUSHER_MAX_FRAME_BYTES', 65_536, { min: 256, max: 16 << 20 }),
    frameRate: envInt(env, 'PUSHER_FRAME_RATE', 100, { min: 1, max: 10_000 }),
    maxDeliveryAttempts: envInt(env, 'PUSHER_MAX_DELIVERY_ATTEMPTS', 10, { min: 1, max: 1000 }),
    offlinePageSize: envInt(env, 'PUSHER_OFFLINE_PAGE_SIZE', 200, { min: 1, max: 5000 }),
    maxPendingLive: envInt(env, 'PUSHER_MAX_PENDING_LIVE', 1000, { min: 10 }),
    nodeTopicPartitions: envInt(env, 'NODE_TOPIC_PARTITIONS', 2, { min: 1, max: 64 }),
    drainTimeoutMs: envInt(env, 'PUSHER_DRAIN_TIMEOUT_MS', 5000, { min: 0, max: 60_000 }),
    upstreamRate: envInt(env, 'PUSHER_UPSTREAM_RATE', 10, { min: 1, max: 10_000 }),
    upstreamBurst: envInt(env, 'PUSHER_UPSTREAM_BURST', 20, { min: 1, max: 100_000 }),
    upstreamMaxRefused: envInt(env, 'PUSHER_UPSTREAM_MAX_REFUSED', 50, { min: 1, max: 100_000 }),
    tokenWarningMs: envInt(env, 'PUSHER_TOKEN_WARNING_MS', 30_000, { min: 0, max: 3_600_000 }),
    traceTtlSeconds: envInt(env, 'TRACE_TTL_SECONDS', 3600, { min: 0, max: 7 * 86_400 }),
    coalesce: envEnum(env, 'PUSHER_COALESCE', ['on', 'off'], 'on') === 'on',
    ...(envOptionalString(env, 'PUSHER_ADMIN_URL') ? { adminUrl: envUrl(env, 'PUSHER_ADMIN_URL', '', ['http:', 'https:']).replace(/\/$/, '') } : {}),
  };
}
