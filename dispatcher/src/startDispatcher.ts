import type { Consumer, EachBatchPayload, Kafka, KafkaMessage } from 'kafkajs';
import type { DispatcherConfig } from './config.js';
import type { ServiceDeps } from '../../platform/lifecycle.js';
import { createServiceClients } from '../../platform/serviceClients.js';
import { createHttpService } from '../../platform/http/httpServer.js';
import { createBatchPublisher, type BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { commitThrough, createProducer, disconnectWithin, ensureTopics } from '../../platform/kafka/kafka.js';
import { topicNames, type Topics } from '../../protocol/topics.js';
import { groupNodes, lookupRoutes } from '../../store/routeTable.js';
import { liveNodeIds } from '../../store/nodeRegistry.js';
import { Counter, Histogram, type Registry } from '../../platform/metrics.js';
import { registerPublisherGauges } from '../../platform/kafka/publisherGauges.js';
import { createForwardedCommits } from './forwardedCommits.js';
import { createDeliveryStore, type DeliveryStore } from '../../store/deliveryStore.js';
import type { Db } from 'mongodb';
import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import { createTaskStore } from '../../store/tasks.js';
import { runConsumer } from '../../platform/kafka/runConsumer.js';
import { recordTaskBoots } from '../../store/taskBoots.js';
import { createTraceWriter } from '../../store/traceRecords.js';
import { createDispatchTracer } from './traceDispatch.js';
import { dispatchSlice, type DispatchSliceDeps } from './dispatchSlice.js';
import { createReplayGuard, type ReplayGuard } from './replayGuard.js';

export async function startDispatcher(deps: ServiceDeps<DispatcherConfig>): Promise<void> {
  const { config, logger, onClose } = deps;
  const clients = createServiceClients('dispatcher', deps, { kafka: true, redis: true, mongo: true });
  const { registry, checks } = clients;
  const kafka = clients.kafka!;
  const redis = clients.redis!;
  const topics = topicNames(config.topicPrefix);
  const store = await openDeliveryStore(clients.mongo!.db, redis, logger, onClose);
  const tasks = createTaskStore({ db: clients.mongo!.db, redis });
  const guard = createReplayGuard({ redis, store });
  const metrics = createDispatcherMetrics(registry);
  const trace = createTraceWriter({ redis, ttlSeconds: config.traceTtlSeconds, onError: (err) => logger.warn({ err: err.message }, 'trace write failed') });
  onClose('trace', () => trace.close());

  await ensureTopics(kafka, [
    { topic: topics.ingest, numPartitions: config.ingestPartitions },
    { topic: topics.dlq, numPartitions: 1 },
  ]);
  const publisher = await openPublisher(kafka, registry, onClose);
  const routing = routingDeps(deps, { redis, store, tasks, guard, trace, publisher, topics, metrics });
  await consumeIngest(deps, kafka, topics.ingest, topics.groups.dispatcher, { routing, guard, metrics });

  // Health, readiness and metrics only: the operator API and dashboard are the admin service's (admin/).
  const http = createHttpService({ name: 'dispatcher', host: config.host, port: config.port, logger, registry, checks });
  const addr = await http.listen();
  onClose('http', () => http.close());
  logger.info({ url: `http://${addr.host}:${addr.port}` }, 'dispatcher listening');
}

function createDispatcherMetrics(registry: Registry) {
  return {
    routed: new Counter({ name: 'push_dispatched_total', help: 'Ingest records by routing outcome', labelNames: ['outcome'], registers: [registry] }),
    batchSeconds: new Histogram({ name: 'push_dispatch_batch_seconds', help: 'Time to route and forward one fetched batch', registers: [registry] }),
    deadLetters: new Counter({
      name: 'push_dead_letters_total',
      help: 'Records sent to push.dlq, by reason',
      labelNames: ['code'],
      registers: [registry],
    }),
  };
}

type DispatcherMetrics = ReturnType<typeof createDispatcherMetrics>;
type RoutingDeps = Omit<DispatchSliceDeps, 'forwarded'>;

/** What routing a slice uses, bound to this service's Redis, store, publisher and metrics. */
function routingDeps(
  { config, logger }: ServiceDeps<DispatcherConfig>,
  c: {
    redis: Redis;
    store: DeliveryStore;
    tasks: ReturnType<typeof createTaskStore>;
    guard: ReplayGuard;
    trace: ReturnType<typeof createTraceWriter>;
    publisher: BatchPublisher;
    topics: Topics;
    metrics: DispatcherMetrics;
  },
): RoutingDeps {
  const { redis, tasks, publisher, topics } = c;
  return {
    guard: c.guard,
    appendDeliveries: (deliveries) => c.store.appendDeliveries(deliveries),
    lookupRoutes: (users) => lookupRoutes(redis, users),
    groupNodes: (app, group) => groupNodes(redis, app, group),
    liveNodes: createLiveNodes(redis, config.nodeCacheMs),
    recordFanout: (taskId, nodes) => tasks.recordFanout(taskId, nodes),
    recordTaskBoots: (fanout) => recordTaskBoots(redis, fanout).catch((err: Error) => logger.debug({ err: err.message }, 'task boots not recorded')),
    publish: (to, records) => publisher.publish(to, records),
    nodeTopic: (nodeId) => topics.node(nodeId),
    deadLetters: {
      publisher,
      dlqTopic: topics.dlq,
      consumer: topics.groups.dispatcher,
      count: (code) => c.metrics.deadLetters.inc({ code }),
      logger,
      log: { message: 'undecodable ingest record', fields: ['partition', 'offset', 'code'] },
    },
    trace: createDispatchTracer({ trace: c.trace, logger }),
    count: (outcome, n) => c.metrics.routed.inc({ outcome }, n),
  };
}

/** Joins the dispatcher group on push.ingest and routes what it fetches, slice by slice. */
async function consumeIngest(
  { config, logger, onClose }: ServiceDeps<DispatcherConfig>,
  kafka: Kafka,
  topic: string,
  groupId: string,
  { routing, guard, metrics }: { routing: RoutingDeps; guard: ReplayGuard; metrics: DispatcherMetrics },
): Promise<void> {
  const consumer = ingestConsumer(kafka, groupId, config.sessionTimeoutMs);
  // What a partition has forwarded is recorded (the replay guard's high-water mark, then the
  // group offset) off the slice's path: the next slice need not wait for two more round trips.
  // One record-then-commit at a time per partition, always of the latest forwarded offset.
  const commits = createForwardedCommits({
    record: async (topic, partition, offset) => {
      await guard.raiseHighWater(topic, partition, offset);
      await commitThrough(consumer, topic, partition, offset);
    },
    onError: (err) => logger.warn({ err: err.message }, 'could not commit forwarded offsets; the next slice commits past them'),
  });
  const handleSlice: SliceHandler = async (topic, partition, messages, resolveOffset) => {
    const end = metrics.batchSeconds.startTimer();
    const forwarded = (offset: string) => {
      resolveOffset(offset);
      commits.done(topic, partition, offset);
    };
    await dispatchSlice({ ...routing, forwarded }, topic, partition, messages);
    end();
  };
  await runConsumer({
    consumer,
    name: 'ingest',
    logger,
    onClose,
    topic,
    fromBeginning: true,
    leave: {
      name: 'consumer',
      close: () => disconnectWithin(consumer, 3000, () => logger.warn('the consumer did not leave its group within 3 s; its session will expire')),
    },
    // Runs before the consumer leaves: forwarded offsets land first.
    beforeLeaving: [{ name: 'commits', close: () => commits.settle() }],
    run: {
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: config.concurrency,
      eachBatch: sliced(config.sliceSize, handleSlice),
    },
  });
}

async function openPublisher(kafka: Kafka, registry: Registry, onClose: ServiceDeps<unknown>['onClose']): Promise<BatchPublisher> {
  const producer = createProducer(kafka);
  await producer.connect();
  onClose('producer', () => producer.disconnect());
  const publisher = createBatchPublisher({ producer, maxQueued: 100_000, maxBatch: 2000, timeoutMs: 10_000 });
  onClose('publisher', () => publisher.close());
  registerPublisherGauges(registry, publisher);
  return publisher;
}

function ingestConsumer(kafka: Kafka, groupId: string, sessionTimeoutMs: number): Consumer {
  return kafka.consumer({
    groupId,
    sessionTimeout: sessionTimeoutMs,
    heartbeatInterval: Math.floor(sessionTimeoutMs / 5),
    maxBytesPerPartition: 512 * 1024,
    // A fetch waits at most this long for records; stopping waits for the fetch in flight, so it
    // bounds how long leaving the group takes (Kafka's default, 5 s, outlasted the 3 s allowed).
    maxWaitTimeInMs: 1000,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
  });
}

async function openDeliveryStore(db: Db, redis: Redis, logger: Logger, onClose: ServiceDeps<unknown>['onClose']): Promise<DeliveryStore> {
  // Keeps the pushers' hot indexes of stored deliveries (store/hotIndex.ts) in step with its writes.
  const store = createDeliveryStore(db, { redis, hot: { onError: (err) => logger.warn({ err: err.message }, 'delivery hot index') } });
  onClose('delivery-hot-index', () => store.close());
  if (!(await store.ensureIndexes())) {
    // FerretDB 1.x lacks TTL indexes: expired deliveries, acks and attempts are swept instead.
    const sweeper = setInterval(() => {
      void store.sweepExpired().catch((err: Error) => logger.warn({ err: err.message }, 'delivery expiry sweep failed'));
    }, 60_000);
    onClose('delivery-sweeper', () => clearInterval(sweeper));
  }
  return store;
}

/**
 * Live nodes change on the scale of seconds, so the set is cached; a route to a
 * node the cache has not seen yet (it just started) forces a quick re-read.
 */
function createLiveNodes(redis: Redis, cacheMs: number): (wanted: Iterable<string>) => Promise<Set<string>> {
  let nodesCache = { at: 0, ids: new Set<string>() };
  return async (wanted) => {
    const age = Date.now() - nodesCache.at;
    const unknown = [...wanted].some((id) => !nodesCache.ids.has(id));
    if (age > cacheMs || (unknown && age > 100)) nodesCache = { at: Date.now(), ids: new Set(await liveNodeIds(redis)) };
    return nodesCache.ids;
  };
}

type SliceHandler = (topic: string, partition: number, messages: KafkaMessage[], resolveOffset: (offset: string) => void) => Promise<void>;

/**
 * A fetched batch is handled in slices, each committed on its own, with a
 * heartbeat between them: a large batch (a 10,000-user list) must not hold
 * the group session past its timeout, or the partition would be taken away
 * and the same records handled again and again.
 */
function sliced(sliceSize: number, handleSlice: SliceHandler) {
  return async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload): Promise<void> => {
    // A slow store (MongoDB under load) must not cost the group membership either.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 1000);
    try {
      for (let i = 0; i < batch.messages.length; i += sliceSize) {
        if (!isRunning() || isStale()) return;
        await handleSlice(batch.topic, batch.partition, batch.messages.slice(i, i + sliceSize), resolveOffset);
        await heartbeat();
      }
    } finally {
      clearInterval(beat);
    }
  };
}
