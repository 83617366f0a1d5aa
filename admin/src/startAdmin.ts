import type { AdminConfig } from './config.js';
import type { ServiceDeps } from '../../platform/lifecycle.js';
import { createServiceClients } from '../../platform/serviceClients.js';
import { createHttpService } from '../../platform/http/httpServer.js';
import { createBatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { createProducer, ensureTopics } from '../../platform/kafka/kafka.js';
import { topicNames } from '../../protocol/topics.js';
import { createTaskStore } from '../../store/tasks.js';
import { taskRoutes } from '../../api/taskRoutes.js';
import { requireOperator } from '../../platform/http/httpAuth.js';
import { kickRoutes } from '../../api/kickRoutes.js';
import { createDeliveryStore } from '../../store/deliveryStore.js';
import { statusRoutes } from './statusRoutes.js';
import { createNodeUrlPolicy, createStatusSampler } from './statusSampler.js';
import { dashboardRoutes } from './dashboard/dashboardRoutes.js';
import { createReplayStore } from './replayStore.js';
import { createReplayRunner } from './replayRunner.js';
import { replayRoutes } from './replayRoutes.js';
import { createDlqStore } from './dlqStore.js';
import { dlqIndexGroup, startDlqIndex } from './dlqIndex.js';
import { dlqRoutes } from './dlqRoutes.js';

/**
 * The operator plane, apart from the data plane: status, dashboard, traces,
 * tasks and kicks, replays and dead letters. One instance per stack: it owns
 * the dead-letter index's consumer group and runs the replays.
 */
export async function startAdmin(deps: ServiceDeps<AdminConfig>): Promise<void> {
  const { config, logger, onClose } = deps;
  const clients = createServiceClients('admin', deps, { kafka: true, redis: true, mongo: true });
  const { registry, checks } = clients;
  const kafka = clients.kafka!;
  const redis = clients.redis!;
  const db = clients.mongo!.db;
  const topics = topicNames(config.topicPrefix);
  const auth = requireOperator(config.operatorKey, config.operatorAuth);
  // Reads deliveries for message traces; the dispatcher writes them (and their hot index).
  const store = createDeliveryStore(db);
  const tasks = createTaskStore({ db, redis });

  // The dead-letter index reads push.dlq from its start: the topic must exist first.
  await ensureTopics(kafka, [{ topic: topics.dlq, numPartitions: 1 }]);
  const producer = createProducer(kafka);
  await producer.connect();
  onClose('producer', () => producer.disconnect());
  const publisher = createBatchPublisher({ producer, maxQueued: 100_000, maxBatch: 2000, timeoutMs: 10_000 });
  onClose('publisher', () => publisher.close());

  const http = createHttpService({ name: 'admin', host: config.host, port: config.port, logger, registry, checks });
  http.app.use(taskRoutes({ tasks, auth, scope: () => undefined }));
  http.app.use(kickRoutes({ redis, auth, appOf: (_res, body) => (typeof body.app === 'string' ? body.app : '') }));

  let selfUrl = '';
  // Node URLs come from Redis: only allowed hosts are called (NODE_URL_ALLOWED_HOSTS).
  const allowNodeUrl = createNodeUrlPolicy(config.status.nodeUrlHosts);
  const { collectorUrl, authUrl, dispatcherUrls } = config.status;
  const sampler = createStatusSampler({ redis, collectorUrl, dispatcherUrls, intervalMs: config.status.sampleMs, allowNodeUrl });
  onClose('status-sampler', () => sampler.close());
  const dlqStore = createDlqStore(db);
  const status = statusRoutes({
    kafka,
    redis,
    db,
    store,
    tasks,
    topics,
    topicPrefix: config.topicPrefix,
    sampler,
    auth,
    selfUrl: () => selfUrl,
    collectorUrl,
    authUrl,
    dispatcherUrls,
    registry,
    operatorKey: config.operatorKey,
    allowNodeUrl,
    dlqEntries: async () => (await dlqStore.list({ limit: 1 })).total,
  });
  http.app.use(status);
  onClose('status', () => status.close());
  http.app.use(dashboardRoutes());

  const replayStore = createReplayStore(db);
  const replays = createReplayRunner({ kafka, redis, store: replayStore, publisher, topics, logger, maxRunning: config.replayMaxRunning });
  onClose('replays', () => replays.close());
  http.app.use(replayRoutes({ runner: replays, store: replayStore, auth, maxRangeMs: config.replayMaxRangeHours * 3_600_000 }));
  const dlqIndex = await startDlqIndex({ kafka, store: dlqStore, topic: topics.dlq, groupId: dlqIndexGroup(config.topicPrefix), logger });
  onClose('dlq-index', () => dlqIndex.disconnect());
  http.app.use(dlqRoutes({ store: dlqStore, publisher, auth, eventsTopic: topics.events }));

  const addr = await http.listen();
  selfUrl = `http://${addr.host}:${addr.port}`;
  onClose('http', () => http.close());
  logger.info({ url: selfUrl }, 'admin listening');
}
