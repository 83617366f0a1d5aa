/**
 * The one place where infra/ reads the environment: every variable is parsed and validated here, and a
 * bad value fails with a message naming the variable.
 */

/** Which storage FerretDB runs on when no real MongoDB is available. */
export type MongoBackend = 'postgresql' | 'sqlite';
export const MONGO_BACKENDS: readonly MongoBackend[] = ['postgresql', 'sqlite'];

/** Default port of the private PostgreSQL cluster: not 5432, so it never meets a system PostgreSQL. */
export const DEFAULT_POSTGRES_PORT = 54329;

const LOOPBACK = /^(127(\.\d{1,3}){3}|localhost|::1|\[::1\])$/i;

function loopbackPort(envName: string, value: string, host: string, port: number): number {
  if (!LOOPBACK.test(host)) {
    throw new Error(`${envName}=${value}: the local stack only runs on loopback (127.0.0.1/localhost), not on "${host}"`);
  }
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`${envName}=${value}: invalid port`);
  return port;
}

/** Port of the local Kafka broker, from the first of KAFKA_BROKERS (default 127.0.0.1:9092). */
export function kafkaPort(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.KAFKA_BROKERS || '127.0.0.1:9092';
  const first = (value.split(',')[0] ?? '').trim().replace(/^[a-z]+:\/\//i, '');
  const m = first.match(/^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/);
  if (!m) throw new Error(`KAFKA_BROKERS=${value}: expected host:port`);
  return loopbackPort('KAFKA_BROKERS', value, m[1] ?? '', Number(m[2] ?? 9092));
}

/** Port of the local Redis, from REDIS_URL (default redis://127.0.0.1:6379). */
export function redisPort(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.REDIS_URL || 'redis://127.0.0.1:6379';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`REDIS_URL=${value}: not a URL`);
  }
  if (url.protocol !== 'redis:') throw new Error(`REDIS_URL=${value}: only redis:// is supported locally`);
  return loopbackPort('REDIS_URL', value, url.hostname, Number(url.port || 6379));
}

/** Port of the local MongoDB-compatible server, from MONGO_URL (default mongodb://127.0.0.1:27017). */
export function mongoPort(env: NodeJS.ProcessEnv = process.env): number {
  const value = env.MONGO_URL || 'mongodb://127.0.0.1:27017';
  const m = value.match(/^mongodb:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/?,]+)(?::(\d+))?/);
  if (!m) throw new Error(`MONGO_URL=${value}: expected mongodb://host:port (mongodb+srv is not supported locally)`);
  return loopbackPort('MONGO_URL', value, m[1] ?? '', Number(m[2] ?? 27017));
}

/**
 * PUSH_MONGO_BACKEND: postgresql (the default and only stack backend). FerretDB on SQLite is refused
 * with the reason: it serialises every write, fails concurrent updates (SQLITE_BUSY) and scans on
 * resume reads, so the durable path does not hold on it (issue #13). Private servers for the
 * benchmarks' comparisons can still run on it (startPrivateMongo({ backend: 'sqlite' })).
 */
export function mongoBackend(env: NodeJS.ProcessEnv = process.env): MongoBackend {
  const value = (env.PUSH_MONGO_BACKEND ?? '').trim();
  if (value === '') return 'postgresql';
  if (value === 'sqlite') {
    throw new Error(
      'PUSH_MONGO_BACKEND=sqlite: FerretDB on SQLite is no longer a stack backend (concurrent updates fail with SQLITE_BUSY, ' +
        'resume reads scan: the stored messages of a 1,500-device reconnect storm were not delivered within 120 s; docs/performance.md). ' +
        'Use postgresql (the default) or a mongod; `npm run bench -- durable --backend sqlite` still measures it',
    );
  }
  if ((MONGO_BACKENDS as readonly string[]).includes(value)) return value as MongoBackend;
  throw new Error(`PUSH_MONGO_BACKEND=${value}: expected postgresql`);
}

/** PUSH_POSTGRES_PORT: loopback port of the private PostgreSQL cluster FerretDB stores into (default 54329). */
export function postgresPort(env: NodeJS.ProcessEnv = process.env): number {
  const value = (env.PUSH_POSTGRES_PORT ?? '').trim();
  if (value === '') return DEFAULT_POSTGRES_PORT;
  const port = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isInteger(port) || port < 1024 || port > 65535) {
    throw new Error(`PUSH_POSTGRES_PORT=${value}: expected a port number between 1024 and 65535`);
  }
  return port;
}
