import type { CollectorConfig } from './config.js';
import type { ServiceDeps } from '../../platform/lifecycle.js';
import { createServiceClients } from '../../platform/serviceClients.js';
import { createHttpService } from '../../platform/http/httpServer.js';
import { createAppStore } from '../../store/apps.js';
import { batchMessages, createMessagesStore, type MessagesStore } from '../../store/messages.js';
import { createIdempotencyKeys, type IdempotencyKeys } from '../../store/idempotency.js';
import { createTaskStore } from '../../store/tasks.js';
import { taskRoutes } from '../../api/taskRoutes.js';
import { appOf, requireApp } from '../../platform/http/httpAuth.js';
import { kickRoutes } from '../../api/kickRoutes.js';
import { presenceRoutes } from './presenceRoutes.js';
import { createBatchPublisher, type BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { createProducer, ensureTopics } from '../../platform/kafka/kafka.js';
import { topicNames, type Topics } from '../../protocol/topics.js';
import type { Kafka } from 'kafkajs';
import type { Registry } from 'prom-client';
import { createCollectorMetrics } from './collectorMetrics.js';
import { createMessageHandler, messageRoutes } from './messageRoutes.js';
import { createApiKeyLookup } from './apiKeyLookup.js';
import { createRateLimiter } from './rateLimiter.js';
import { createPublishedMarker, startOutboxSweeper } from './outbox.js';
import { startEventsConsumer } from './eventsConsumer.js';
import { exitWhenConsumerGivesUp } from '../../platform/kafka/exitWhenConsumerGivesUp.js';
import { Gauge } from '../../platform/metrics.js';

export async function startCollector(deps: ServiceDeps<CollectorConfig>): Promise<void> {
  const { config, logger, onClose } = deps;
  const clients = createServiceClients('collector', deps, { kafka: true, redis: true, mongo: true });
  const { registry, checks } = clients;
  const kafka = clients.kafka!;
  const redis = clients.redis!;
  const db = clients.mongo!.db;
  const metrics = createCollectorMetrics(registry);
  const apps = createAppStore({ db });
  const store = createMessagesStore(db);
  const idempotency = createIdempotencyKeys(db, { windowMs: config.idempotencyWindowSeconds * 1000, isStored: (id) => store.isStored(id) });
  await ensureStoreIndexes(deps, store, idempotency);
  await apps.ensureIndexes();

  const topics = topicNames(config.topicPrefix);
  const publisher = await openPublisher(deps, kafka, topics, registry);
  const fanout = { maxFanoutBytes: config.maxFanoutBytes, maxRecordBytes: config.kafkaMaxRequestBytes };

  const marker = createPublishedMarker(store, logger);
  onClose('published-marker', () => marker.close());
  const tasks = createTaskStore({ db, redis });
  await tasks.ensureIndexes();
  // One insertMany (and one outbox entry) for the messages of concurrent submissions.
  const messages = batchMessages(store, { lingerMs: config.storeLingerMs, maxBatch: config.storeBatch });
  // Closed after the batcher (closers run in reverse): its last messages still complete their keys.
  onClose('idempotency-writer', () => idempotency.close());
  onClose('message-batcher', () => messages.close());
  const submitDeps = { store, messages, idempotency, tasks, publisher, logger, metrics, markPublished: marker.mark, ingestTopic: topics.ingest, fanout };

  const outbox = startOutboxSweeper({
    store,
    publisher,
    redis,
    logger,
    metrics,
    ingestTopic: topics.ingest,
    dlqTopic: topics.dlq,
    fanout,
    intervalMs: config.outboxIntervalMs,
    batchSize: config.outboxBatch,
  });
  onClose('outbox', () => outbox.close());

  if (config.mode === 'production' && !config.eventsRequireSignature)
    logger.warn('EVENTS_REQUIRE_SIGNATURE=false: push.events accepts unsigned records for apps without a signing secret');
  const consumer = await startEventsConsumer(
    kafka,
    {
      ...submitDeps,
      apps,
      dlq: publisher,
      // The same Redis buckets as HTTP submissions, so an app's limit holds across both ways in.
      limiter: createRateLimiter(redis, (err) => logger.warn({ err: err.message }, 'rate limiter unavailable; admitting')),
      options: {
        requireSignature: config.eventsRequireSignature,
        retries: config.eventsRetries,
        retryBackoffMs: config.eventsRetryBackoffMs,
        pauseMs: config.eventsPauseMs,
      },
    },
    topics,
  );
  onClose('events-consumer', () => consumer.disconnect());
  exitWhenConsumerGivesUp(consumer, logger, 'events', onClose);

  const http = createHttpService({ name: 'collector', host: config.host, port: config.port, logger, registry, checks });
  const limiter = createRateLimiter(redis, (err) => logger.warn({ err: err.message }, 'rate limiter unavailable; admitting'));
  const messageDeps = { ...submitDeps, apps, apiKeys: createApiKeyLookup(apps), maxBodyBytes: config.maxBodyBytes, limiter, apiKeyAuth: config.apiKeyAuth };
  const submissions = createMessageHandler(messageDeps);
  http.app.use(messageRoutes(submissions.handler));
  // Submissions are answered ahead of express; every other request still goes to the express app.
  http.server.removeAllListeners('request');
  http.server.on('request', submissions.listener(http.app));
  // Business systems follow their own tasks with their API key; operators use the dispatcher's admin API.
  http.app.use(taskRoutes({ tasks, auth: requireApp(apps, config.apiKeyAuth), scope: (res) => appOf(res)._id }));
  http.app.use(presenceRoutes({ redis, auth: requireApp(apps, config.apiKeyAuth) }));
  http.app.use(kickRoutes({ redis, auth: requireApp(apps, config.apiKeyAuth), appOf: (res) => appOf(res)._id }));
  const addr = await http.listen();
  onClose('http', () => http.close());
  logger.info({ url: `http://${addr.host}:${addr.port}` }, 'collector listening');
}

/** TTL indexes where the server has them; else a sweep of expired messages and keys every minute. */
async function ensureStoreIndexes({ logger, onClose }: ServiceDeps<CollectorConfig>, store: MessagesStore, idempotency: IdempotencyKeys): Promise<void> {
  const ttlIndexes = (await store.ensureIndexes()) && (await idempotency.ensureIndexes());
  if (ttlIndexes) return;
  logger.info('MongoDB server lacks TTL indexes; sweeping expired documents every minute');
  const sweeper = setInterval(() => {
    void Promise.all([store.sweepExpired(), idempotency.sweepExpired()]).catch((err: Error) => logger.warn({ err: err.message }, 'expiry sweep failed'));
  }, 60_000);
  onClose('expiry-sweeper', () => clearInterval(sweeper));
}

/**
 * The collector's topics, producer and ingest publisher: bounded by bytes as well as records,
 * and split under the broker's request limit (issue 12 #6); an app holds at most its share.
 */
async function openPublisher({ config, onClose }: ServiceDeps<CollectorConfig>, kafka: Kafka, topics: Topics, registry: Registry): Promise<BatchPublisher> {
  await ensureTopics(kafka, [
    { topic: topics.ingest, numPartitions: config.ingestPartitions },
    { topic: topics.events, numPartitions: config.ingestPartitions },
    { topic: topics.dlq, numPartitions: 1 },
  ]);
  const producer = createProducer(kafka, { maxInFlightRequests: 1 });
  await producer.connect();
  onClose('producer', () => producer.disconnect());
  const publisher = createBatchPublisher({
    producer,
    name: 'ingest',
    timeoutMs: config.publishTimeoutMs,
    maxRequestBytes: config.kafkaMaxRequestBytes,
    maxQueuedBytes: config.publishQueueBytes,
    maxOwnerShare: config.appQueueSharePercent / 100,
  });
  onClose('publisher', () => publisher.close());
  new Gauge({
    name: 'push_publish_queue_depth',
    help: 'Records waiting in the Kafka batch publisher (queued and in flight)',
    registers: [registry],
    collect() {
      this.set(publisher.queued());
    },
  });
  new Gauge({
    name: 'push_publish_queue_bytes',
    help: 'Bytes of records waiting in the Kafka batch publisher (queued and in flight)',
    registers: [registry],
    collect() {
      this.set(publisher.queuedBytes?.() ?? 0);
    },
  });
  return publisher;
}
