import type { Kafka } from 'kafkajs';
import type { CommonConfig } from './config.js';
import type { ServiceDeps } from './lifecycle.js';
import { createKafka } from './kafka/kafka.js';
import { createRedis, type Redis } from './redis.js';
import { createMongo, type MongoHandle } from './mongo.js';
import { kafkaCheck, mongoCheck, redisCheck, type DependencyCheck } from './dependencyChecks.js';
import { createRegistry, type Registry } from './metrics.js';

export interface ServiceClients {
  kafka: Kafka;
  redis: Redis;
  mongo: MongoHandle;
  registry: Registry;
  checks: DependencyCheck[];
}

type Need = { kafka?: boolean; redis?: boolean; mongo?: boolean };

/**
 * Creates the shared clients a service asks for, registers their closers and
 * the matching readiness checks. Connections are lazy: a dependency that is
 * down at start only keeps `/readyz` at 503 until it answers.
 */
export function createServiceClients<C extends CommonConfig>(
  service: string,
  { config, logger, onClose }: ServiceDeps<C>,
  need: Need,
): Partial<ServiceClients> & { registry: Registry; checks: DependencyCheck[] } {
  const checks: DependencyCheck[] = [];
  const out: Partial<ServiceClients> & { registry: Registry; checks: DependencyCheck[] } = {
    registry: createRegistry(service),
    checks,
  };
  if (need.kafka) {
    const kafka = createKafka({ clientId: `push-${service}`, brokers: config.kafkaBrokers, logger });
    const admin = kafka.admin();
    let connected: Promise<void> | undefined;
    checks.push({
      name: 'kafka',
      async check() {
        connected ??= admin.connect().catch((err: unknown) => {
          connected = undefined;
          throw err;
        });
        await connected;
        await kafkaCheck(admin).check();
      },
    });
    onClose('kafka-admin', () => admin.disconnect());
    out.kafka = kafka;
  }
  if (need.redis) {
    const redis = createRedis(config.redisUrl, logger, `push-${service}`, config.redisKeyPrefix);
    checks.push(redisCheck(redis));
    onClose('redis', async () => {
      await redis.quit().catch(() => redis.disconnect());
    });
    out.redis = redis;
  }
  if (need.mongo) {
    const mongo = createMongo(config.mongoUrl, config.mongoDb, `push-${service}`, logger);
    checks.push(mongoCheck(mongo.db));
    onClose('mongo', () => mongo.close());
    out.mongo = mongo;
  }
  return out;
}
