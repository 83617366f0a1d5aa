import type { PusherConfig } from './config.js';
import type { ServiceDeps } from '../../common/src/lifecycle.js';
import { createServiceClients } from '../../common/src/serviceClients.js';
import { createHttpService } from '../../common/src/httpServer.js';
import { createAppStore } from '../../common/src/apps.js';
import { createMessageStore } from '../../common/src/messageStore.js';
import { createBatchPublisher } from '../../common/src/batchPublisher.js';
import { createProducer, ensureTopics } from '../../common/src/kafka.js';
import { topicNames } from '../../common/src/topics.js';
import { heartbeatNode, removeNode } from '../../common/src/nodeRegistry.js';
import { decodeRecord, RecordDecodeError } from '../../schemas/registry.js';
import { createPusherMetrics } from './pusherMetrics.js';
import { createSocketServer } from './socketServer.js';
import { createTokenVerifier } from './verifyToken.js';
import { createAckWriter } from './ackWriter.js';

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
  const store = createMessageStore(db);
  const apps = createAppStore({ db });

  await ensureTopics(kafka, [
    { topic: ownTopic, numPartitions: config.nodeTopicPartitions },
    { topic: topics.upstream, numPartitions: 4 },
  ]);
  const producer = createProducer(kafka);
  await producer.connect();
  onClose('producer', () => producer.disconnect());
  const publisher = createBatchPublisher({ producer, maxQueued: 10_000 });
  onClose('publisher', () => publisher.close());
  const acks = createAckWriter(store, logger);
  onClose('acks', () => acks.close());

  const http = createHttpService({ name: 'pusher', host: config.host, port: config.port, logger, registry, checks, isAccepting: () => sockets.isAccepting() });
  let connections = () => 0;
  const metrics = createPusherMetrics(registry, () => connections());
  const sockets = createSocketServer(http.server, {
    config, logger, redis, apps, store, metrics, acks, publisher,
    verify: createTokenVerifier(config.authUrl),
    upstreamTopic: topics.upstream,
  });
  connections = () => sockets.table.size;

  // Start from the end of our topic: records written while this node was down were
  // for sockets that are gone; their persistent messages wait in the store.
  const consumer = kafka.consumer({ groupId: topics.groups.pusher(config.nodeId), sessionTimeout: 10_000, heartbeatInterval: 2000, maxBytesPerPartition: 1 << 20 });
  await consumer.connect();
  onClose('consumer', () => consumer.disconnect());
  await consumer.subscribe({ topic: ownTopic, fromBeginning: false });
  await consumer.run({
    eachBatch: async ({ batch, heartbeat }) => {
      for (const message of batch.messages) {
        try {
          sockets.deliver(decodeRecord('NodeDelivery', message.value, message.headers));
        } catch (err) {
          if (!(err instanceof RecordDecodeError)) throw err;
          logger.warn({ offset: message.offset, code: err.code }, 'undecodable node record skipped');
        }
      }
      await heartbeat();
    },
  });

  const beat = () =>
    heartbeatNode(redis, { id: config.nodeId, url: config.publicUrl, connections: sockets.table.size, draining: !sockets.isAccepting() }, NODE_TTL_MS).catch(
      (err: Error) => logger.warn({ err: err.message }, 'node heartbeat failed'),
    );
  await beat();
  const beatTimer = setInterval(() => void beat(), NODE_TTL_MS / 3);
  onClose('node-registration', async () => {
    clearInterval(beatTimer);
    await removeNode(redis, config.nodeId).catch(() => undefined);
  });

  const addr = await http.listen();
  onClose('http', () => http.close());
  onClose('sockets', () => sockets.close());
  logger.info({ url: `http://${addr.host}:${addr.port}`, ws: config.publicUrl, nodeId: config.nodeId }, 'pusher listening');
}
