import { isIP } from 'node:net';
import {
  ConfigError,
  devBindChecked,
  envEnum,
  envInt,
  envIdentifier,
  envList,
  envOptionalString,
  envPort,
  envString,
  envUrl,
  loadCommonConfig,
  type CommonConfig,
  type Env,
} from '../../platform/config.js';

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
  /** Verified tokens remembered (until `exp`, at most 10 minutes) so reconnects skip the signature check; 0 turns it off. Default 25000 (above the connections one pusher holds: the cache is LRU, so a storm of more tokens than it keeps finds none). */
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
  /** Seconds a user's hot index of stored deliveries lives in Redis after a resume loaded it (0: resumes read MongoDB only). Default 900. */
  hotIndexSeconds: number;
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
  /** Bytes of records in one Kafka produce request (bigger publishes are split; a bigger record is refused). Default 524288. */
  kafkaMaxRequestBytes: number;
  /** Bytes of upstream records waiting for Kafka; an upstream frame over it gets UPSTREAM_BACKLOG. Default 4 MiB. */
  upstreamQueueBytes: number;
  /** Bytes of ack records waiting for Kafka (their own budget, apart from upstream). Default 8 MiB. */
  ackQueueBytes: number;
  /** Bytes of presence records waiting for Kafka (their own budget). Default 4 MiB. */
  presenceQueueBytes: number;
  /**
   * Where operators and the status API reach this node's admin listener (drain, metrics, health).
   * Default http://<PUSHER_ADMIN_HOST, or the public URL's host when that is a wildcard>:<admin port>.
   */
  adminUrl?: string;
  /** Interface of the admin listener (drain, metrics, health), apart from the public WebSocket port. Default 127.0.0.1. */
  adminHost: string;
  /** Port of the admin listener; 0 picks a free one (announced in the node registry and the log). Default 0. */
  adminPort: number;
  /** Node entries whose heartbeat lapsed this long ago are dropped from push:nodes/push:boots (by any pusher, on its heartbeat). Default 3600000 ms. */
  nodePruneMs: number;
  /** Deepest nesting of arrays/objects in a client frame (the frame object itself is depth 1). Default 32. */
  maxFrameDepth: number;
  /** Malformed frames a connection may send before it is closed with 4002. Default 10. */
  maxBadFrames: number;
  /** Persistent message ids delivered to one connection and not yet acked that it may ack (oldest forgotten past this). Default 10000. */
  maxUnackedPerConnection: number;
  /** Ack ids of messages never delivered on a connection that are dropped silently; past this each such ack frame is a bad frame. Default 1000. */
  maxUnknownAcks: number;
  /** Ack ids one device may have waiting in this node's ack queue (its share of the node-wide 100,000). Default 5000. */
  ackQuotaPerDevice: number;
  /** Open sockets per (app, user, device) on this node; a newer one closes the oldest with 4009. Default 1. */
  maxSocketsPerDevice: number;
  /** Open sockets per (app, user) on this node; a handshake over it is refused with 429. Default 10. */
  maxSocketsPerUser: number;
  /** WebSocket handshakes per second per source address (token bucket refill); 0 turns the limit off. Default 50. */
  handshakeRate: number;
  /** Handshakes one source address may make in a burst (bucket size). Default 200. */
  handshakeBurst: number;
  /** Source addresses the handshake rate does not apply to: `loopback` (127.0.0.0/8, ::1), exact addresses, or `none`. Default `loopback`. */
  handshakeExempt: string[];
  /** How long a refused handshake's connection is kept for the peer to read the answer and close; then it is destroyed. Default 2000 ms. */
  refusedHandshakeLingerMs: number;
  /** Open connections one source address (IPv6: its /64) may hold on the public port, handshakes exempt by PUSHER_HANDSHAKE_EXEMPT excepted; 0 = no cap. Default 1000. */
  maxConnectionsPerAddress: number;
  /** Time a new connection has to send its first request's (or upgrade's) headers; then it is closed. Default 10000 ms. */
  firstRequestTimeoutMs: number;
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
    tokenCacheSize: envInt(env, 'PUSHER_TOKEN_CACHE_SIZE', 25_000, { min: 0, max: 1_000_000 }),
    maxBufferedBytes: envInt(env, 'PUSHER_MAX_BUFFERED_BYTES', 1 << 20, { min: 1024 }),
    maxFrameBytes: envInt(env, 'PUSHER_MAX_FRAME_BYTES', 65_536, { min: 256, max: 16 << 20 }),
    frameRate: envInt(env, 'PUSHER_FRAME_RATE', 100, { min: 1, max: 10_000 }),
    maxDeliveryAttempts: envInt(env, 'PUSHER_MAX_DELIVERY_ATTEMPTS', 10, { min: 1, max: 1000 }),
    offlinePageSize: envInt(env, 'PUSHER_OFFLINE_PAGE_SIZE', 200, { min: 1, max: 5000 }),
    hotIndexSeconds: envInt(env, 'PUSHER_HOT_INDEX_SECONDS', 900, { min: 0, max: 86_400 }),
    maxPendingLive: envInt(env, 'PUSHER_MAX_PENDING_LIVE', 1000, { min: 10 }),
    nodeTopicPartitions: envInt(env, 'NODE_TOPIC_PARTITIONS', 2, { min: 1, max: 64 }),
    drainTimeoutMs: envInt(env, 'PUSHER_DRAIN_TIMEOUT_MS', 5000, { min: 0, max: 60_000 }),
    upstreamRate: envInt(env, 'PUSHER_UPSTREAM_RATE', 10, { min: 1, max: 10_000 }),
    upstreamBurst: envInt(env, 'PUSHER_UPSTREAM_BURST', 20, { min: 1, max: 100_000 }),
    upstreamMaxRefused: envInt(env, 'PUSHER_UPSTREAM_MAX_REFUSED', 50, { min: 1, max: 100_000 }),
    tokenWarningMs: envInt(env, 'PUSHER_TOKEN_WARNING_MS', 30_000, { min: 0, max: 3_600_000 }),
    traceTtlSeconds: envInt(env, 'TRACE_TTL_SECONDS', 3600, { min: 0, max: 7 * 86_400 }),
    coalesce: envEnum(env, 'PUSHER_COALESCE', ['on', 'off'], 'on') === 'on',
    kafkaMaxRequestBytes: envInt(env, 'KAFKA_MAX_REQUEST_BYTES', 512 * 1024, { min: 16 * 1024, max: 64 * 1024 * 1024 }),
    upstreamQueueBytes: envInt(env, 'PUSHER_UPSTREAM_QUEUE_BYTES', 4 * 1024 * 1024, { min: 64 * 1024, max: 2 ** 31 }),
    ackQueueBytes: envInt(env, 'PUSHER_ACK_QUEUE_BYTES', 8 * 1024 * 1024, { min: 64 * 1024, max: 2 ** 31 }),
    presenceQueueBytes: envInt(env, 'PUSHER_PRESENCE_QUEUE_BYTES', 4 * 1024 * 1024, { min: 64 * 1024, max: 2 ** 31 }),
    maxFrameDepth: envInt(env, 'PUSHER_MAX_FRAME_DEPTH', 32, { min: 2, max: 512 }),
    maxBadFrames: envInt(env, 'PUSHER_MAX_BAD_FRAMES', 10, { min: 0, max: 1_000_000 }),
    maxUnackedPerConnection: envInt(env, 'PUSHER_MAX_UNACKED', 10_000, { min: 100, max: 1_000_000 }),
    maxUnknownAcks: envInt(env, 'PUSHER_MAX_UNKNOWN_ACKS', 1000, { min: 0, max: 10_000_000 }),
    ackQuotaPerDevice: envInt(env, 'PUSHER_ACK_QUOTA', 5000, { min: 500, max: 100_000 }),
    maxSocketsPerDevice: envInt(env, 'PUSHER_MAX_SOCKETS_PER_DEVICE', 1, { min: 1, max: 1000 }),
    maxSocketsPerUser: envInt(env, 'PUSHER_MAX_SOCKETS_PER_USER', 10, { min: 1, max: 100_000 }),
    handshakeRate: envInt(env, 'PUSHER_HANDSHAKE_RATE', 50, { min: 0, max: 1_000_000 }),
    handshakeBurst: envInt(env, 'PUSHER_HANDSHAKE_BURST', 200, { min: 1, max: 1_000_000 }),
    handshakeExempt: envHandshakeExempt(env),
    refusedHandshakeLingerMs: envInt(env, 'PUSHER_REFUSED_HANDSHAKE_LINGER_MS', 2000, { min: 100, max: 60_000 }),
    maxConnectionsPerAddress: envInt(env, 'PUSHER_MAX_CONNECTIONS_PER_ADDRESS', 1000, { min: 0, max: 10_000_000 }),
    firstRequestTimeoutMs: envInt(env, 'PUSHER_FIRST_REQUEST_TIMEOUT_MS', 10_000, { min: 100, max: 300_000 }),
    // Development mode's loopback rule (ALLOW_DEV_PUBLIC_BIND) holds for the admin listener too.
    adminHost: devBindChecked(env, common.mode, 'PUSHER_ADMIN_HOST', envString(env, 'PUSHER_ADMIN_HOST', '127.0.0.1')),
    adminPort: envPort(env, 'PUSHER_ADMIN_PORT', 0),
    nodePruneMs: envInt(env, 'PUSHER_NODE_PRUNE_MS', 3_600_000, { min: 1000, max: 30 * 86_400_000 }),
    ...(envOptionalString(env, 'PUSHER_ADMIN_URL') ? { adminUrl: envUrl(env, 'PUSHER_ADMIN_URL', '', ['http:', 'https:']).replace(/\/$/, '') } : {}),
  };
}

/** `loopback`, exact IPv4/IPv6 addresses, or `none` (nothing is exempt). */
function envHandshakeExempt(env: Env): string[] {
  const list = envList(env, 'PUSHER_HANDSHAKE_EXEMPT', ['none']);
  if (list.length === 1 && list[0] === 'none') return [];
  for (const item of list) {
    if (item !== 'loopback' && isIP(item) === 0) throw new ConfigError('PUSHER_HANDSHAKE_EXEMPT', `expected loopback, none or IP addresses, got "${item}"`);
  }
  return list;
}
