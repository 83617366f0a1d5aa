import type { PusherConfig } from './config.js';
import type { ServiceDeps } from '../../common/src/lifecycle.js';
import { createServiceClients } from '../../common/src/serviceClients.js';
import { createHttpService } from '../../common/src/httpServer.js';
import { createAppStore } from '../../common/src/apps.js';
import { createDeliveryStore } from '../../store/deliveryStore.js';
import { createBatchPublisher } from '../../common/src/batchPublisher.js';
import { createProducer, ensureTopics } from '../../common/src/kafka.js';
import { topicNames } from '../../protocol/topics.js';
import { heartbeatNode, liveNodes, pruneNodes, removeNode } from '../../common/src/nodeRegistry.js';
import { requireOperator } from '../../common/src/httpAuth.js';
import { decodeRecord, RecordDecodeError } from '../../schemas/registry.js';
import { withTimeout } from '../../common/src/errors.js';
import { sendToDeadLetters } from '../../common/src/deadLetter.js';
import type { Kafka } from 'kafkajs';
import { createPusherMetrics } from './pusherMetrics.js';
import { createSocketServer } from './socketServer.js';
import { createTokenVerifier, TokenError } from './verifyToken.js';
import { createAckWriter } from './ackWriter.js';
import { createTaskRunner } from './taskRunner.js';
import { createPresence } from './presence.js';
import { createTaskStore } from '../../common/src/tasks.js';
import { exitWhenConsumerGivesUp } from '../../common/src/exitWhenConsumerGivesUp.js';
import { kickChannel, parseKick } from '../../common/src/kicks.js';
import { createTraceWriter } from '../../common/src/traceRecords.js';
import { Counter, Gauge } from '../../common/src/metrics.js';
// KafkaJS's idle timer loop costs every pusher a few % of a core (see the module).
import '../../common/src/kafkajsIdleFix.js';

const NODE_TTL_MS = 15_000;

export async function startPusher(deps: ServiceDeps<PusherConfig>): Promise<void> {
  const { config, logger, onClose } = deps;
  const clients = createServiceClients('pusher', deps, { kafka: true, redis: true, mongo: true });
  const { registry, checks } = clients;
  const kafka = clients.kafka!;
  const redis = clients.redis!;
  const db = clients.mongo!.db;
  const topics = topicNames(config.topicPrefix);
  const ownTopic = topics.node(config.nodeId);
  // Resumes read each user's hot index in Redis first (store/hotIndex.ts); MongoDB stays authoritative.
  const store = createDeliveryStore(db, {
    redis,
    hot: { ttlSeconds: config.hotIndexSeconds, onError: (err) => logger.warn({ err: err.message }, 'delivery hot index') },
  });
  onClose('delivery-hot-index', () => store.close());
  // The dispatcher creates them too; whoever starts first, reads find their indexes.
  await store.ensureIndexes();
  const apps = createAppStore({ db });

  await ensureTopics(kafka, [
    { topic: ownTopic, numPartitions: config.nodeTopicPartitions },
    { topic: topics.upstream, numPartitions: 4 },
    { topic: topics.presence, numPartitions: 4 },
    { topic: topics.acks, numPartitions: 4 },
    { topic: topics.dlq, numPartitions: 1 },
  ]);
  const producer = createProducer(kafka);
  await producer.connect();
  onClose('producer', () => producer.disconnect());
  // One publisher per kind of record, each with its own byte budget (issue 12 #13): a burst of
  // large upstream frames fills only the upstream queue, never the acks' or presence's, and
  // every produce request stays under the broker's limit.
  const publisherOf = (name: string, maxQueuedBytes: number, maxQueued = 10_000) =>
    createBatchPublisher({ producer, name, maxQueued, maxQueuedBytes, maxRequestBytes: config.kafkaMaxRequestBytes });
  const publishers = {
    upstream: publisherOf('upstream', config.upstreamQueueBytes),
    acks: publisherOf('ack', config.ackQueueBytes),
    presence: publisherOf('presence', config.presenceQueueBytes),
    dlq: publisherOf('dead-letter', 16 * 1024 * 1024, 1000),
  };
  onClose('publisher', async () => {
    await Promise.all(Object.values(publishers).map((p) => p.close()));
  });
  new Gauge({
    name: 'push_publish_queue_depth', help: 'Records waiting in the Kafka batch publisher (queued and in flight)', labelNames: ['topic'], registers: [registry],
    collect() { for (const [topic, p] of Object.entries(publishers)) this.set({ topic }, p.queued()); },
  });
  new Gauge({
    name: 'push_publish_queue_bytes', help: 'Bytes of records waiting in the Kafka batch publisher (queued and in flight)', labelNames: ['topic'], registers: [registry],
    collect() { for (const [topic, p] of Object.entries(publishers)) this.set({ topic }, p.queuedBytes?.() ?? 0); },
  });
  new Gauge({
    name: 'push_store_user_reads', help: 'Users\' delivery states read on resume since start, by source: the Redis hot index or a MongoDB find', labelNames: ['source'], registers: [registry],
    collect() { this.set({ source: 'hot' }, store.hotHits()); this.set({ source: 'mongo' }, store.mongoReads()); },
  });
  const deadLetters = new Counter({ name: 'push_dead_letters_total', help: 'Records sent to push.dlq, by reason', labelNames: ['code'], registers: [registry] });

  const http = createHttpService({ name: 'pusher', host: config.host, port: config.port, logger, registry, checks, isAccepting: () => sockets.isAccepting() });
  let connections = () => 0;
  const metrics = createPusherMetrics(registry, () => connections());
  const acks = createAckWriter({
    store, logger, publisher: publishers.acks, topic: topics.acks, nodeId: config.nodeId, maxPendingPerDevice: config.ackQuotaPerDevice,
    onPublished: (outcome, n) => metrics.ackRecords.inc({ outcome }, n),
  });
  onClose('acks', () => acks.close());
  // One subscriber connection for the control channels (task state, kicks).
  const subscriber = redis.duplicate();
  onClose('subscriber', () => subscriber.quit().then(() => undefined, () => subscriber.disconnect()));
  const taskStore = createTaskStore({ db, redis });
  const taskRunner = createTaskRunner({
    tasks: taskStore,
    subscriber,
    nodeId: config.nodeId,
    logger,
    onWritten: (n) => metrics.delivered.inc({ path: 'task' }, n),
    onDropped: () => metrics.dropped.inc({ reason: 'task-not-written' }),
    registry,
  });
  onClose('task-runner', () => taskRunner.close());
  // Annotates the dispatcher's trace records: written, acked, parked, dropped (common/src/traceRecords.ts).
  const trace = createTraceWriter({ redis, ttlSeconds: config.traceTtlSeconds, keepExpiry: true, onError: (err) => logger.debug({ err: err.message }, 'trace write failed') });
  onClose('trace', () => trace.close());
  const sockets = createSocketServer(http.server, {
    config, logger, redis, apps, store, metrics, acks, publisher: publishers.upstream, taskRunner, trace,
    presence: createPresence({ publisher: publishers.presence, topic: topics.presence, nodeId: config.nodeId, logger }),
    stoppedTasks: (ids) => taskStore.stopped(ids),
    verify: (token) => verify(token),
    upstreamTopic: topics.upstream,
    registerNode: () => registerNode(),
  });
  connections = () => sockets.table.size;
  // The node heartbeat, once it exists (below); Redis coming back before that has nothing to register.
  let registerNode = async (): Promise<void> => undefined;
  // Prefixed like the keys (REDIS_KEY_PREFIX): another stack's kicks are not ours.
  const kicks = kickChannel(subscriber);
  await subscriber.subscribe(kicks);
  subscriber.on('message', (channel: string, text: string) => {
    // Anyone who can publish to Redis writes here: a bad message is logged, never thrown.
    try {
      const kick = channel === kicks ? parseKick(text) : undefined;
      if (kick) sockets.kick(kick);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'kick not applied');
    }
  });

  // Start from the end of our topic: records written while this node was down were
  // for sockets that are gone; their persistent messages wait in the store. The
  // group's offsets are set to the end explicitly (not "latest at first fetch"),
  // and clients are accepted only once the consumer has joined, so nothing routed
  // to a connected client can fall into a gap before consumption starts.
  const groupId = topics.groups.pusher(config.nodeId);
  await skipToEnd(kafka, groupId, ownTopic).catch((err: Error) => logger.warn({ err: err.message }, 'could not move the node group to the end of its topic'));
  const consumer = kafka.consumer({ groupId, sessionTimeout: 10_000, heartbeatInterval: 2000, maxBytesPerPartition: 1 << 20 });
  await consumer.connect();
  onClose('consumer', () => consumer.disconnect());
  exitWhenConsumerGivesUp(consumer, logger, 'node', onClose);
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.subscribe({ topic: ownTopic, fromBeginning: false });
  await consumer.run({
    eachBatch: async ({ batch, heartbeat }) => {
      for (const message of batch.messages) {
        try {
          sockets.deliver(decodeRecord('NodeDelivery', message.value, message.headers));
        } catch (err) {
          if (!(err instanceof RecordDecodeError)) throw err;
          logger.warn({ offset: message.offset, code: err.code }, 'undecodable node record sent to dead letters');
          deadLetters.inc({ code: err.code });
          await sendToDeadLetters(publishers.dlq, { topic: batch.topic, partition: batch.partition, message }, err.code, err.message, groupId, topics.dlq);
        }
      }
      await heartbeat();
    },
  });
  await withTimeout(joined, 60_000, 'joining the node consumer group');

  // Operator endpoints (drain, metrics, health) on a listener of their own, loopback by default:
  // the public port faces every browser, and a drain there was one guessed key away.
  const adminHttp = createHttpService({ name: 'pusher', host: config.adminHost, port: config.adminPort, logger, registry, checks, isAccepting: () => sockets.isAccepting() });
  adminHttp.app.post('/v1/admin/drain', requireOperator(config.operatorKey, config.operatorAuth), (_req, res) => {
    res.status(202).json({ status: 'draining', nodeId: config.nodeId });
    // The same path as SIGTERM: drain, close everything, exit 0.
    setImmediate(() => process.kill(process.pid, 'SIGTERM'));
  });
  const adminAddr = await adminHttp.listen();
  onClose('admin-http', () => adminHttp.close());
  const registeredAdminUrl = adminUrl(config, adminAddr.port);

  const beat = () =>
    heartbeatNode(redis, { id: config.nodeId, boot: sockets.boot, url: config.publicUrl, adminUrl: registeredAdminUrl, connections: sockets.table.size, draining: !sockets.isAccepting() }, NODE_TTL_MS)
      // Every pusher prunes on its heartbeat (one idempotent script), so push:nodes and push:boots stay bounded.
      .then(() => pruneNodes(redis, config.nodePruneMs))
      .then((gone) => {
        if (gone.length > 0) logger.info({ nodes: gone }, 'pruned nodes whose heartbeat lapsed long ago');
      })
      .catch((err: Error) => logger.warn({ err: err.message }, 'node heartbeat failed'));
  registerNode = beat;
  await beat();
  const beatTimer = setInterval(() => void beat(), NODE_TTL_MS / 3);
  onClose('node-registration', async () => {
    clearInterval(beatTimer);
    await removeNode(redis, config.nodeId).catch(() => undefined);
  });

  // Lets a browser tell "token refused" from "network down": a failed WebSocket
  // handshake shows no status to page scripts. Verified locally, like the handshake.
  const verify = createTokenVerifier(config.authUrl, { cacheSize: config.tokenCacheSize });
  http.app.get('/v1/session', async (req, res) => {
    res.set('Access-Control-Allow-Origin', '*');
    res.set('Cache-Control', 'no-store');
    try {
      const claims = await verify(typeof req.query.token === 'string' ? req.query.token : '');
      const origin = req.headers.origin;
      const app = await apps.get(claims.app);
      if (!app) throw new TokenError('TOKEN_INVALID', 'token names an unknown app');
      if (origin && !app.allowedOrigins.includes('*') && !app.allowedOrigins.includes(origin)) {
        res.status(403).json({ error: { code: 'ORIGIN_NOT_ALLOWED', message: `origin ${origin} is not allowed for app ${app._id}` } });
        return;
      }
      res.json({ app: claims.app, userId: claims.user, deviceId: claims.device, expiresAt: new Date(claims.exp * 1000).toISOString(), accepting: sockets.isAccepting() });
    } catch (err) {
      // Not the token's fault (the app store failed): 503, which clients retry; a 401 makes the SDK give up for good.
      if (!(err instanceof TokenError)) {
        logger.warn({ err: (err as Error).message }, 'session check failed');
        res.set('Retry-After', '2').status(503).json({ error: { code: 'UNAVAILABLE', message: 'cannot check the session now; retry later' } });
        return;
      }
      res.status(err.code === 'KEYS_UNAVAILABLE' ? 503 : 401).json({ error: { code: err.code, message: err.message } });
    }
  });
  // Admin endpoints are served on the admin listener only; say where instead of a bare 404.
  http.app.use('/v1/admin', (_req, res) => {
    res.status(404).json({ error: { code: 'NOT_FOUND', message: "admin endpoints are served on the node's admin listener (PUSHER_ADMIN_HOST/PUSHER_ADMIN_PORT, its adminUrl in the node list), not on the public port" } });
  });
  const addr = await http.listen();
  onClose('http', () => http.close());
  onClose('sockets', () => sockets.close());
  // Registered last, so it runs first on SIGTERM: move the clients, then close.
  onClose('drain', async () => {
    const started = Date.now();
    sockets.stopAccepting();
    await beat(); // now marked draining: auth stops handing this node out
    const others = (await liveNodes(redis).catch(() => [])).filter((n) => n.id !== config.nodeId && !n.draining).map((n) => n.url);
    const left = await sockets.drain(others, others.length > 0 ? config.drainTimeoutMs : 0);
    logger.info({ others: others.length, remaining: left, ms: Date.now() - started }, 'drained');
  });
  logger.info({ url: `http://${addr.host}:${addr.port}`, ws: config.publicUrl, admin: registeredAdminUrl, nodeId: config.nodeId }, 'pusher listening');
}

/** Where operators reach this node's admin listener (health, metrics, drain). */
function adminUrl(config: PusherConfig, port: number): string {
  if (config.adminUrl) return config.adminUrl;
  const host = config.adminHost === '0.0.0.0' || config.adminHost === '::' ? new URL(config.publicUrl).hostname : config.adminHost;
  return `http://${host.includes(':') && !host.startsWith('[') ? `[${host}]` : host}:${port}`;
}

async function skipToEnd(kafka: Kafka, groupId: string, topic: string): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const ends = await admin.fetchTopicOffsets(topic);
    await admin.setOffsets({ groupId, topic, partitions: ends.map((p) => ({ partition: p.partition, offset: p.high })) });
  } finally {
    await admin.disconnect();
  }
}
