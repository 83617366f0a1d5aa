import type { PusherConfig } from './config.js';
import type { ServiceDeps } from '../../platform/lifecycle.js';
import { createServiceClients } from '../../platform/serviceClients.js';
import { createHttpService } from '../../platform/http/httpServer.js';
import { createAppStore } from '../../store/apps.js';
import { createDeliveryStore } from '../../store/deliveryStore.js';
import { createProducer, ensureTopics } from '../../platform/kafka/kafka.js';
import { topicNames, type Topics } from '../../protocol/topics.js';
import { liveNodes } from '../../store/nodeRegistry.js';
import { createPusherMetrics, type PusherMetrics } from './pusherMetrics.js';
import { createSocketServer, type SocketServer } from './socketServer.js';
import { createTokenVerifier } from './verifyToken.js';
import { createPusherPublishers } from './publishers.js';
import { startNodeConsumer, type NodeConsumerDeps } from './nodeConsumer.js';
import { adminElsewhere, sessionRoute } from './sessionRoute.js';
import { startNodeAdmin } from './nodeAdmin.js';
import { createAckWriter, type AckWriter, type AckWriterDeps } from './ackWriter.js';
import { createTaskRunner, type TaskRunner, type TaskRunnerDeps } from './taskRunner.js';
import { createPresence } from './presence.js';
import { createTaskStore } from '../../store/tasks.js';
import { kickChannel, parseKick, type Kick } from '../../store/kicks.js';
import type { Redis } from 'ioredis';
import type { Kafka } from 'kafkajs';
import type { Db } from 'mongodb';
import type { Registry } from 'prom-client';
import type { Logger } from '../../platform/logger.js';
import { createTraceWriter, type TraceWriter } from '../../store/traceRecords.js';
import { Counter, Gauge } from '../../platform/metrics.js';
// KafkaJS's idle timer loop costs every pusher a few % of a core (see the module).
import '../../platform/patches/kafkajsIdleFix.js';

export async function startPusher(deps: ServiceDeps<PusherConfig>): Promise<void> {
  const { config, logger, onClose } = deps;
  const clients = createServiceClients('pusher', deps, { kafka: true, redis: true, mongo: true });
  const { registry, checks } = clients;
  const kafka = clients.kafka!;
  const redis = clients.redis!;
  const db = clients.mongo!.db;
  const topics = topicNames(config.topicPrefix);
  const store = await openDeliveryStore(deps, db, redis, registry);
  const apps = createAppStore({ db });
  const publishers = await openPublishers(deps, kafka, topics, registry);
  const deadLetters = deadLetterCounter(registry);

  const http = createHttpService({ name: 'pusher', host: config.host, port: config.port, logger, registry, checks, isAccepting: () => sockets.isAccepting() });
  let connections = () => 0;
  const metrics = createPusherMetrics(registry, () => connections());
  const acks = openAckWriter(deps, store, publishers.acks, topics.acks, metrics);
  // One subscriber connection for the control channels (task state, kicks).
  const subscriber = openSubscriber(redis, onClose);
  const taskStore = createTaskStore({ db, redis });
  const taskRunner = openTaskRunner(deps, taskStore, subscriber, metrics, registry);
  const trace = openTraceWriter(deps, redis);
  const sockets = createSocketServer(http.server, {
    config,
    logger,
    redis,
    apps,
    store,
    metrics,
    acks,
    publisher: publishers.upstream,
    taskRunner,
    trace,
    presence: createPresence({ publisher: publishers.presence, topic: topics.presence, nodeId: config.nodeId, logger }),
    stoppedTasks: (ids) => taskStore.stopped(ids),
    verify: (token) => verify(token),
    upstreamTopic: topics.upstream,
    registerNode: () => registerNode(),
  });
  connections = () => sockets.table.size;
  // The node heartbeat, once it exists (below); Redis coming back before that has nothing to register.
  let registerNode = async (): Promise<void> => undefined;
  await listenForKicks(subscriber, (kick) => sockets.kick(kick), logger);

  // Clients are accepted only once the consumer has joined (see startNodeConsumer).
  await consumeNodeTopic(deps, kafka, topics, publishers.dlq, sockets, deadLetters);

  const { beat, adminUrl } = await startNodeAdmin({
    config,
    logger,
    onClose,
    redis,
    registry,
    checks,
    node: () => ({ boot: sockets.boot, connections: sockets.table.size, accepting: sockets.isAccepting() }),
  });
  registerNode = beat;

  const verify = createTokenVerifier(config.authUrl, { cacheSize: config.tokenCacheSize });
  http.app.get('/v1/session', sessionRoute({ verify, appOf: sockets.appOf, logger, isAccepting: () => sockets.isAccepting() }));
  // Admin endpoints are served on the admin listener only; say where instead of a bare 404.
  http.app.use('/v1/admin', adminElsewhere);
  const addr = await http.listen();
  onClose('http', () => http.close());
  onClose('sockets', () => sockets.close());
  // Registered last, so it runs first on SIGTERM: move the clients, then close.
  onClose('drain', () => drain(sockets, beat, redis, config, logger));
  logger.info({ url: `http://${addr.host}:${addr.port}`, ws: config.publicUrl, admin: adminUrl, nodeId: config.nodeId }, 'pusher listening');
}

/** Records this node dead-lettered (push.dlq), by reason. */
function deadLetterCounter(registry: Registry): Counter<'code'> {
  return new Counter({
    name: 'push_dead_letters_total',
    help: 'Records sent to push.dlq, by reason',
    labelNames: ['code'],
    registers: [registry],
  });
}

/** The acks of every connection, batched into the store and announced on push.acks (ackWriter.ts). */
function openAckWriter(
  { config, logger, onClose }: ServiceDeps<PusherConfig>,
  store: AckWriterDeps['store'],
  publisher: AckWriterDeps['publisher'],
  topic: string,
  metrics: PusherMetrics,
): AckWriter {
  const acks = createAckWriter({
    store,
    logger,
    publisher,
    topic,
    nodeId: config.nodeId,
    maxPendingPerDevice: config.ackQuotaPerDevice,
    onPublished: (outcome, n) => metrics.ackRecords.inc({ outcome }, n),
  });
  onClose('acks', () => acks.close());
  return acks;
}

/** A Redis connection of its own, for subscriptions (a subscribed connection runs no other commands). */
function openSubscriber(redis: Redis, onClose: ServiceDeps<PusherConfig>['onClose']): Redis {
  const subscriber = redis.duplicate();
  onClose('subscriber', () =>
    subscriber.quit().then(
      () => undefined,
      () => subscriber.disconnect(),
    ),
  );
  return subscriber;
}

/** The broadcast tasks' writer on this node (taskRunner.ts), told of task state changes through `subscriber`. */
function openTaskRunner(
  { config, logger, onClose }: ServiceDeps<PusherConfig>,
  tasks: TaskRunnerDeps['tasks'],
  subscriber: Redis,
  metrics: PusherMetrics,
  registry: Registry,
): TaskRunner {
  const taskRunner = createTaskRunner({
    tasks,
    subscriber,
    nodeId: config.nodeId,
    logger,
    onWritten: (n) => metrics.delivered.inc({ path: 'task' }, n),
    onDropped: () => metrics.dropped.inc({ reason: 'task-not-written' }),
    registry,
  });
  onClose('task-runner', () => taskRunner.close());
  return taskRunner;
}

/** Annotates the dispatcher's trace records: written, acked, parked, dropped (store/traceRecords.ts). */
function openTraceWriter({ config, logger, onClose }: ServiceDeps<PusherConfig>, redis: Redis): TraceWriter {
  const trace = createTraceWriter({
    redis,
    ttlSeconds: config.traceTtlSeconds,
    keepExpiry: true,
    onError: (err) => logger.debug({ err: err.message }, 'trace write failed'),
  });
  onClose('trace', () => trace.close());
  return trace;
}

/** This node's topic, delivered to its sockets; what cannot be decoded goes to push.dlq (nodeConsumer.ts). */
async function consumeNodeTopic(
  { config, logger, onClose }: ServiceDeps<PusherConfig>,
  kafka: Kafka,
  topics: Topics,
  dlq: NodeConsumerDeps['dlq'],
  sockets: SocketServer,
  deadLetters: Counter<'code'>,
): Promise<void> {
  await startNodeConsumer({
    kafka,
    logger,
    onClose,
    groupId: topics.groups.pusher(config.nodeId),
    topic: topics.node(config.nodeId),
    dlqTopic: topics.dlq,
    dlq,
    deliver: (record) => sockets.deliver(record),
    onDeadLetter: (code) => deadLetters.inc({ code }),
  });
}

/** Kicks published by operators (store/kicks.ts), applied to this node's sockets. */
async function listenForKicks(subscriber: Redis, kick: (k: Kick) => void, logger: Logger): Promise<void> {
  // Prefixed like the keys (REDIS_KEY_PREFIX): another stack's kicks are not ours.
  const kicks = kickChannel(subscriber);
  await subscriber.subscribe(kicks);
  subscriber.on('message', (channel: string, text: string) => {
    // Anyone who can publish to Redis writes here: a bad message is logged, never thrown.
    try {
      const k = channel === kicks ? parseKick(text) : undefined;
      if (k) kick(k);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'kick not applied');
    }
  });
}

/** The delivery store, its indexes and its read gauge. Resumes read each user's hot index in Redis first (store/hotIndex.ts); MongoDB stays authoritative. */
async function openDeliveryStore({ config, logger, onClose }: ServiceDeps<PusherConfig>, db: Db, redis: Redis, registry: Registry) {
  const store = createDeliveryStore(db, {
    redis,
    hot: { ttlSeconds: config.hotIndexSeconds, onError: (err) => logger.warn({ err: err.message }, 'delivery hot index') },
  });
  onClose('delivery-hot-index', () => store.close());
  // The dispatcher creates them too; whoever starts first, reads find their indexes.
  await store.ensureIndexes();
  new Gauge({
    name: 'push_store_user_reads',
    help: "Users' delivery states read on resume since start, by source: the Redis hot index or a MongoDB find",
    labelNames: ['source'],
    registers: [registry],
    collect() {
      this.set({ source: 'hot' }, store.hotHits());
      this.set({ source: 'mongo' }, store.mongoReads());
    },
  });
  return store;
}

/** The node's topics, the producer and one publisher per kind of record. */
async function openPublishers({ config, onClose }: ServiceDeps<PusherConfig>, kafka: Kafka, topics: Topics, registry: Registry) {
  await ensureTopics(kafka, [
    { topic: topics.node(config.nodeId), numPartitions: config.nodeTopicPartitions },
    { topic: topics.upstream, numPartitions: 4 },
    { topic: topics.presence, numPartitions: 4 },
    { topic: topics.acks, numPartitions: 4 },
    { topic: topics.dlq, numPartitions: 1 },
  ]);
  const producer = createProducer(kafka);
  await producer.connect();
  onClose('producer', () => producer.disconnect());
  const publishers = createPusherPublishers(producer, config, registry);
  onClose('publisher', async () => {
    await Promise.all(Object.values(publishers).map((p) => p.close()));
  });
  return publishers;
}

/** Moves this node's clients to the other live nodes (or lets them go after the drain timeout). */
async function drain(sockets: SocketServer, beat: () => Promise<void>, redis: Redis, config: PusherConfig, logger: Logger): Promise<void> {
  const started = Date.now();
  sockets.stopAccepting();
  await beat(); // now marked draining: auth stops handing this node out
  const others = (await liveNodes(redis).catch(() => [])).filter((n) => n.id !== config.nodeId && !n.draining).map((n) => n.url);
  const left = await sockets.drain(others, others.length > 0 ? config.drainTimeoutMs : 0);
  logger.info({ others: others.length, remaining: left, ms: Date.now() - started }, 'drained');
}
