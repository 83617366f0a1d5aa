import type { CollectorConfig } from './config.js';
import type { ServiceDeps } from '../../platform/lifecycle.js';
import { createServiceClients, type ServiceClients } from '../../platform/serviceClients.js';
import { createHttpService } from '../../platform/http/httpServer.js';
import { createAppStore, type AppStore } from '../../store/apps.js';
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
import { startEventsConsumer, type EventsDeps } from './eventsConsumer.js';
import type { SubmitDeps } from './submitMessage.js';
import type { FanoutLimits } from './checkFanout.js';
import type { Redis } from 'ioredis';
import { registerPublisherGauges } from '../../platform/kafka/publisherGauges.js';

export async function startCollector(deps: ServiceDeps<CollectorConfig>): Promise<void> {
  const { config } = deps;
  const clients = createServiceClients('collector', deps, { kafka: true, redis: true, mongo: true });
  const kafka = clients.kafka!;
  const redis = clients.redis!;
  const db = clients.mongo!.db;
  const metrics = createCollectorMetrics(clients.registry);
  const apps = createAppStore({ db });
  const store = createMessagesStore(db);
  const idempotency = createIdempotencyKeys(db, { windowMs: config.idempotencyWindowSeconds * 1000, isStored: (id) => store.isStored(id) });
  await ensureStoreIndexes(deps, store, idempotency);
  await apps.ensureIndexes();

  const topics = topicNames(config.topicPrefix);
  const publisher = await openPublisher(deps, kafka, topics, clients.registry);
  const tasks = createTaskStore({ db, redis });
  await tasks.ensureIndexes();
  const submitDeps = openSubmissions(deps, { store, idempotency, tasks, publisher, metrics, ingestTopic: topics.ingest });
  startOutbox(deps, { ...submitDeps, redis, dlqTopic: topics.dlq });
  await consumeEvents(deps, kafka, topics, { ...submitDeps, apps, redis });
  await serveHttp(deps, clients, { ...submitDeps, apps, redis });
}

/** What HTTP and push.events submissions share: the store, its batcher and published marker, idempotency keys, the publisher. */
function openSubmissions(
  { config, logger, onClose }: ServiceDeps<CollectorConfig>,
  parts: Pick<SubmitDeps, 'idempotency' | 'tasks' | 'publisher' | 'metrics' | 'ingestTopic'> & { store: MessagesStore },
): SubmitDeps & { store: MessagesStore; fanout: FanoutLimits } {
  const { store, idempotency } = parts;
  const fanout = { maxFanoutBytes: config.maxFanoutBytes, maxRecordBytes: config.kafkaMaxRequestBytes };
  const marker = createPublishedMarker(store, logger);
  onClose('published-marker', () => marker.close());
  // One insertMany (and one outbox entry) for the messages of concurrent submissions.
  const messages = batchMessages(store, { lingerMs: config.storeLingerMs, maxBatch: config.storeBatch });
  // Closed after the batcher (closers run in reverse): its last messages still complete their keys.
  onClose('idempotency-writer', () => idempotency.close());
  onClose('message-batcher', () => messages.close());
  return { ...parts, messages, logger, markPublished: marker.mark, fanout };
}

type Submissions = ReturnType<typeof openSubmissions>;

function startOutbox({ config, onClose }: ServiceDeps<CollectorConfig>, s: Submissions & { redis: Redis; dlqTopic: string }): void {
  const outbox = startOutboxSweeper({
    store: s.store,
    publisher: s.publisher,
    redis: s.redis,
    logger: s.logger,
    metrics: s.metrics,
    ingestTopic: s.ingestTopic,
    dlqTopic: s.dlqTopic,
    fanout: s.fanout,
    intervalMs: config.outboxIntervalMs,
    batchSize: config.outboxBatch,
  });
  onClose('outbox', () => outbox.close());
}

/** push.events goes through the same submissions as HTTP (eventsConsumer.ts). */
async function consumeEvents(
  { config, logger, onClose }: ServiceDeps<CollectorConfig>,
  kafka: Kafka,
  topics: Topics,
  { redis, ...s }: Submissions & { apps: AppStore; redis: Redis },
): Promise<void> {
  if (config.mode === 'production' && !config.eventsRequireSignature)
    logger.warn('EVENTS_REQUIRE_SIGNATURE=false: push.events accepts unsigned records for apps without a signing secret');
  const events: EventsDeps = {
    ...s,
    dlq: s.publisher,
    // The same Redis buckets as HTTP submissions, so an app's limit holds across both ways in.
    limiter: createRateLimiter(redis, (err) => logger.warn({ err: err.message }, 'rate limiter unavailable; admitting')),
    options: {
      requireSignature: config.eventsRequireSignature,
      retries: config.eventsRetries,
      retryBackoffMs: config.eventsRetryBackoffMs,
      pauseMs: config.eventsPauseMs,
    },
  };
  await startEventsConsumer(kafka, events, topics, onClose);
}

async function serveHttp(
  { config, logger, onClose }: ServiceDeps<CollectorConfig>,
  { registry, checks }: Pick<ServiceClients, 'registry' | 'checks'>,
  { redis, ...s }: Submissions & { apps: AppStore; redis: Redis },
): Promise<void> {
  const { apps, tasks } = s;
  const http = createHttpService({ name: 'collector', host: config.host, port: config.port, logger, registry, checks });
  const limiter = createRateLimiter(redis, (err) => logger.warn({ err: err.message }, 'rate limiter unavailable; admitting'));
  const messageDeps = { ...s, apiKeys: createApiKeyLookup(apps), maxBodyBytes: config.maxBodyBytes, limiter, apiKeyAuth: config.apiKeyAuth };
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
  registerPublisherGauges(registry, publisher);
  return publisher;
}
