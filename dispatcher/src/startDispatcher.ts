import type { EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { DispatcherConfig } from './config.js';
import type { ServiceDeps } from '../../common/src/lifecycle.js';
import { createServiceClients } from '../../common/src/serviceClients.js';
import { createHttpService } from '../../common/src/httpServer.js';
import { createBatchPublisher } from '../../common/src/batchPublisher.js';
import { commitThrough, createProducer, disconnectWithin, ensureTopics } from '../../common/src/kafka.js';
import { topicNames } from '../../protocol/topics.js';
import { recordKey } from '../../protocol/recordKeys.js';
import { groupNodes, lookupRoutes } from '../../common/src/routes.js';
import { liveNodeIds } from '../../common/src/nodeRegistry.js';
import { sendToDeadLetters } from '../../common/src/deadLetter.js';
import { Counter, Gauge, Histogram } from '../../common/src/metrics.js';
import { decodeRecord, encodeRecord, latestSchemaId, RecordDecodeError, sameEncoding, SCHEMA_HEADER, schemaIdOf } from '../../schemas/registry.js';
import type { IngestRecord } from '../../schemas/types.js';
import { routeRecords } from './routeRecords.js';
import { createForwardedCommits } from './forwardedCommits.js';
import { deliveriesOf } from './deliveriesOf.js';
import { createDeliveryStore } from '../../store/deliveryStore.js';
import { createTaskStore } from '../../common/src/tasks.js';
import { exitWhenConsumerGivesUp } from '../../common/src/exitWhenConsumerGivesUp.js';
import { recordTaskBoots } from './taskBoots.js';
import { taskRoutes } from '../../common/src/taskRoutes.js';
import { requireOperator } from '../../common/src/httpAuth.js';
import { kickRoutes } from '../../common/src/kicks.js';
import { createTraceWriter } from '../../common/src/traceRecords.js';
import { createDispatchTracer } from './traceDispatch.js';
import { statusRoutes } from './statusRoutes.js';
import { createNodeUrlPolicy, createStatusSampler } from './statusSampler.js';
import { dashboardRoutes } from './dashboard/dashboardRoutes.js';
import { createReplayGuard } from './replayGuard.js';
import { createReplayStore } from './replayStore.js';
import { createReplayRunner } from './replayRunner.js';
import { replayRoutes } from './replayRoutes.js';
import { createDlqStore } from './dlqStore.js';
import { dlqIndexGroup, startDlqIndex } from './dlqIndex.js';
import { dlqRoutes } from './dlqRoutes.js';

export async function startDispatcher(deps: ServiceDeps<DispatcherConfig>): Promise<void> {
  const { config, logger, onClose } = deps;
  const clients = createServiceClients('dispatcher', deps, { kafka: true, redis: true, mongo: true });
  const { registry, checks } = clients;
  const kafka = clients.kafka!;
  const redis = clients.redis!;
  const topics = topicNames(config.topicPrefix);
  // Keeps the pushers' hot indexes of stored deliveries (store/hotIndex.ts) in step with its writes.
  const store = createDeliveryStore(clients.mongo!.db, { redis, hot: { onError: (err) => logger.warn({ err: err.message }, 'delivery hot index') } });
  onClose('delivery-hot-index', () => store.close());
  if (!(await store.ensureIndexes())) {
    // FerretDB 1.x lacks TTL indexes: expired deliveries, acks and attempts are swept instead.
    const sweeper = setInterval(() => {
      void store.sweepExpired().catch((err: Error) => logger.warn({ err: err.message }, 'delivery expiry sweep failed'));
    }, 60_000);
    onClose('delivery-sweeper', () => clearInterval(sweeper));
  }
  const tasks = createTaskStore({ db: clients.mongo!.db, redis });
  const guard = createReplayGuard({ redis, store });
  const routed = new Counter({ name: 'push_dispatched_total', help: 'Ingest records by routing outcome', labelNames: ['outcome'], registers: [registry] });
  const batchSeconds = new Histogram({ name: 'push_dispatch_batch_seconds', help: 'Time to route and forward one fetched batch', registers: [registry] });
  const deadLetters = new Counter({
    name: 'push_dead_letters_total',
    help: 'Records sent to push.dlq, by reason',
    labelNames: ['code'],
    registers: [registry],
  });
  const trace = createTraceWriter({
    redis,
    ttlSeconds: config.status.traceTtlSeconds,
    onError: (err) => logger.warn({ err: err.message }, 'trace write failed'),
  });
  onClose('trace', () => trace.close());
  const traceDispatch = createDispatchTracer({ trace, logger });

  await ensureTopics(kafka, [
    { topic: topics.ingest, numPartitions: config.ingestPartitions },
    { topic: topics.dlq, numPartitions: 1 },
  ]);
  const producer = createProducer(kafka);
  await producer.connect();
  onClose('producer', () => producer.disconnect());
  const publisher = createBatchPublisher({ producer, maxQueued: 100_000, maxBatch: 2000, timeoutMs: 10_000 });
  onClose('publisher', () => publisher.close());
  new Gauge({
    name: 'push_publish_queue_depth',
    help: 'Records waiting in the Kafka batch publisher (queued and in flight)',
    registers: [registry],
    collect() {
      this.set(publisher.queued());
    },
  });

  // Live nodes change on the scale of seconds, so the set is cached; a route to a
  // node the cache has not seen yet (it just started) forces a quick re-read.
  let nodesCache = { at: 0, ids: new Set<string>() };
  const liveNodes = async (wanted: Iterable<string>) => {
    const age = Date.now() - nodesCache.at;
    const unknown = [...wanted].some((id) => !nodesCache.ids.has(id));
    if (age > config.nodeCacheMs || (unknown && age > 100)) nodesCache = { at: Date.now(), ids: new Set(await liveNodeIds(redis)) };
    return nodesCache.ids;
  };

  const consumer = kafka.consumer({
    groupId: topics.groups.dispatcher,
    sessionTimeout: config.sessionTimeoutMs,
    heartbeatInterval: Math.floor(config.sessionTimeoutMs / 5),
    maxBytesPerPartition: 512 * 1024,
    retry: { retries: Number.MAX_SAFE_INTEGER, initialRetryTime: 200, maxRetryTime: 5000 },
  });
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

  // A fetched batch is handled in slices, each committed on its own, with a
  // heartbeat between them: a large batch (a 10,000-user list) must not hold
  // the group session past its timeout, or the partition would be taken away
  // and the same records handled again and again.
  const handleBatch = async ({ batch, resolveOffset, heartbeat, isRunning, isStale }: EachBatchPayload) => {
    // A slow store (MongoDB under load) must not cost the group membership either.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), 1000);
    try {
      for (let i = 0; i < batch.messages.length; i += config.sliceSize) {
        if (!isRunning() || isStale()) return;
        await handleSlice(batch.topic, batch.partition, batch.messages.slice(i, i + config.sliceSize), resolveOffset);
        await heartbeat();
      }
    } finally {
      clearInterval(beat);
    }
  };

  const handleSlice = async (topic: string, partition: number, messages: KafkaMessage[], resolveOffset: (offset: string) => void) => {
    const batch = { topic, partition };
    const end = batchSeconds.startTimer();
    const records: IngestRecord[] = [];
    const recordOf = new Map<KafkaMessage, IngestRecord>();
    // Ingest records whose bytes are already a valid NodeDelivery are forwarded as they came.
    const bytesOf = new Map<IngestRecord, Buffer>();
    for (const message of messages) {
      try {
        const rec = decodeRecord('IngestRecord', message.value, message.headers);
        records.push(rec);
        recordOf.set(message, rec);
        if (sameEncoding(schemaIdOf(message.headers)!, 'NodeDelivery')) bytesOf.set(rec, message.value!);
      } catch (err) {
        if (!(err instanceof RecordDecodeError)) throw err;
        routed.inc({ outcome: 'dead-lettered' });
        logger.warn({ partition: batch.partition, offset: message.offset, code: err.code }, 'undecodable ingest record');
        deadLetters.inc({ code: err.code });
        await sendToDeadLetters(
          publisher,
          { topic: batch.topic, partition: batch.partition, message },
          err.code,
          err.message,
          topics.groups.dispatcher,
          topics.dlq,
        );
      }
    }
    // Records handled before (replays, a reset group) are re-dispatched idempotently: see replayGuard.
    const seen = await guard.seenBefore(topic, partition, messages, recordOf);
    const notAgain = seen.size > 0 ? await guard.notAgain(seen) : new Set<IngestRecord>();
    // Stored first, then routed: see deliveriesOf. One call for the whole slice.
    const stored = deliveriesOf(records, Date.now());
    if (stored.length > 0) await store.appendDeliveries(stored);
    const users = new Map<string, { app: string; user: string }>();
    for (const r of records) if (r.user !== null) users.set(`${r.app}|${r.user}`, { app: r.app, user: r.user });
    const keys = [...users.keys()];
    const found = await lookupRoutes(redis, [...users.values()]);
    const routesByUser = new Map(keys.map((k, i) => [k, found[i]!]));
    const wanted = new Set(found.flatMap((routes) => routes.map((r) => r.nodeId)));
    const groups = new Map<string, string[]>();
    for (const r of records) {
      if (r.target === 'GROUP' && r.group !== null && !groups.has(`${r.app}|${r.group}`)) {
        const nodes = await groupNodes(redis, r.app, r.group);
        groups.set(`${r.app}|${r.group}`, nodes);
        for (const n of nodes) wanted.add(n);
      }
    }
    const live = await liveNodes(wanted);
    const blocked = seen.size > 0 ? await guard.blockedNodes(seen, (r) => routesByUser.get(`${r.app}|${r.user}`) ?? []) : new Map<IngestRecord, Set<string>>();
    const result = routeRecords(
      notAgain.size > 0 ? records.filter((r) => !notAgain.has(r)) : records,
      (r) => {
        const nodes =
          r.target === 'USER'
            ? (routesByUser.get(`${r.app}|${r.user}`) ?? []).map((x) => x.nodeId)
            : r.target === 'GROUP'
              ? (groups.get(`${r.app}|${r.group}`) ?? [])
              : live;
        const no = blocked.get(r);
        return [...nodes].filter((n) => live.has(n) && !no?.has(n));
      },
      Date.now(),
    );
    // Tasks learn their fan-out before any pusher starts, so each knows its share of the rate.
    for (const [taskId, nodes] of result.fanout) await tasks.recordFanout(taskId, nodes);
    // For the status API only (a node restarted under the same id drops its share): never holds up routing.
    if (result.fanout.size > 0)
      await recordTaskBoots(redis, result.fanout).catch((err: Error) => logger.debug({ err: err.message }, 'task boots not recorded'));

    const nodeSchema = latestSchemaId('NodeDelivery');
    await Promise.all(
      [...result.byNode].map(([nodeId, recs]) =>
        publisher.publish(
          topics.node(nodeId),
          recs.map((r) => {
            const value = bytesOf.get(r) ?? encodeRecord('NodeDelivery', r).value;
            const key = recordKey(r.app, r);
            return { key, value, headers: { [SCHEMA_HEADER]: nodeSchema, 'push-trace': r.traceId } };
          }),
        ),
      ),
    );
    traceDispatch(records, result.byNode, Date.now());
    // Offsets move only after every forward succeeded: a crash before this line replays the batch.
    const last = messages.at(-1);
    if (last) {
      resolveOffset(last.offset);
      commits.done(batch.topic, batch.partition, last.offset);
    }
    let forwarded = 0;
    for (const recs of result.byNode.values()) forwarded += recs.length;
    routed.inc({ outcome: 'forwarded' }, forwarded);
    routed.inc({ outcome: 'offline' }, result.leftOffline);
    routed.inc({ outcome: 'dropped-transient' }, result.droppedTransient);
    routed.inc({ outcome: 'expired' }, result.expired);
    end();
  };

  await consumer.connect();
  onClose('consumer', () => disconnectWithin(consumer, 3000, () => logger.warn('the consumer did not leave its group within 3 s; its session will expire')));
  // Runs before the consumer leaves (handlers run last registered first): forwarded offsets land first.
  onClose('commits', () => commits.settle());
  exitWhenConsumerGivesUp(consumer, logger, 'ingest', onClose);
  await consumer.subscribe({ topic: topics.ingest, fromBeginning: true });
  await consumer.run({
    autoCommit: false,
    eachBatchAutoResolve: false,
    partitionsConsumedConcurrently: config.concurrency,
    eachBatch: handleBatch,
  });

  const http = createHttpService({ name: 'dispatcher', host: config.host, port: config.port, logger, registry, checks });
  http.app.use(taskRoutes({ tasks, auth: requireOperator(config.operatorKey, config.operatorAuth), scope: () => undefined }));
  http.app.use(
    kickRoutes({
      redis,
      auth: requireOperator(config.operatorKey, config.operatorAuth),
      appOf: (_res, body) => (typeof body.app === 'string' ? body.app : ''),
    }),
  );
  let selfUrl = '';
  // Node URLs come from Redis: only allowed hosts are called (NODE_URL_ALLOWED_HOSTS).
  const allowNodeUrl = createNodeUrlPolicy(config.status.nodeUrlHosts);
  const sampler = createStatusSampler({
    redis,
    collectorUrl: config.status.collectorUrl,
    ownMetrics: () => registry.metrics(),
    intervalMs: config.status.sampleMs,
    allowNodeUrl,
  });
  onClose('status-sampler', () => sampler.close());
  const status = statusRoutes({
    kafka,
    redis,
    db: clients.mongo!.db,
    store,
    tasks,
    topics,
    topicPrefix: config.topicPrefix,
    sampler,
    auth: requireOperator(config.operatorKey, config.operatorAuth),
    selfUrl: () => selfUrl,
    collectorUrl: config.status.collectorUrl,
    authUrl: config.status.authUrl,
    dispatcherUrls: config.status.dispatcherUrls,
    registry,
    operatorKey: config.operatorKey,
    allowNodeUrl,
    dlqEntries: async () => (await dlqStore.list({ limit: 1 })).total,
  });
  http.app.use(status);
  onClose('status', () => status.close());
  http.app.use(dashboardRoutes());
  const replayStore = createReplayStore(clients.mongo!.db);
  const replays = createReplayRunner({ kafka, redis, store: replayStore, publisher, topics, logger, maxRunning: config.replayMaxRunning });
  onClose('replays', () => replays.close());
  http.app.use(
    replayRoutes({
      runner: replays,
      store: replayStore,
      auth: requireOperator(config.operatorKey, config.operatorAuth),
      maxRangeMs: config.replayMaxRangeHours * 3_600_000,
    }),
  );
  const dlqStore = createDlqStore(clients.mongo!.db);
  const dlqIndex = await startDlqIndex({ kafka, store: dlqStore, topic: topics.dlq, groupId: dlqIndexGroup(config.topicPrefix), logger });
  onClose('dlq-index', () => dlqIndex.disconnect());
  http.app.use(dlqRoutes({ store: dlqStore, publisher, auth: requireOperator(config.operatorKey, config.operatorAuth), eventsTopic: topics.events }));
  const addr = await http.listen();
  selfUrl = `http://${addr.host}:${addr.port}`;
  onClose('http', () => http.close());
  logger.info({ url: `http://${addr.host}:${addr.port}` }, 'dispatcher listening');
}
