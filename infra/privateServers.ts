/**
 * Throwaway servers for fault tests: each on free ports and its own temp dir
 * under `.infra/tmp/`, restartable on the same port and data, removed by
 * `dispose()`. Unlike the shared stack (stack.ts) they are never reused.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import { mongoBackend, type MongoBackend } from './config.js';
import { provisionKafka, startKafka, type KafkaHandle } from './kafka.js';
import { mongoEngine, provisionMongo, startMongo, type MongoHandle } from './mongo.js';
import { infraPath } from './paths.js';
import { ensureDatabase, postgresUrl, provisionPostgres, startPostgres, type PostgresHandle } from './postgres.js';
import { freePort, isAlive, silentLog, type Log, type ServerHandle } from './process.js';
import { startRedis, type RedisHandle } from './redis.js';
import { FERRET_ROLE } from './serverDefs.js';

export interface PrivateControls {
  readonly dir: string;
  readonly port: number;
  /** Stops the server if it is still up, then starts it again on the same port and data dir. */
  restart(): Promise<void>;
  /** Kills the server and deletes its temp dir. */
  dispose(): Promise<void>;
}
export type PrivateKafka = KafkaHandle & PrivateControls & { readonly controllerPort: number };
export type PrivateRedis = RedisHandle & PrivateControls;
export type PrivatePostgres = PostgresHandle & PrivateControls;
/** A FerretDB on PostgreSQL carries its cluster: `postgres` restarts/kills it alone, `dispose()` removes both. */
export type PrivateMongo = MongoHandle & PrivateControls & { readonly postgres?: PrivatePostgres };

function privateDir(name: string): string {
  const dir = infraPath('tmp', `${name}-${crypto.randomBytes(6).toString('hex')}`);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

async function privateServer<H extends ServerHandle>(dir: string, port: number, start: () => Promise<H>): Promise<H & PrivateControls> {
  let current: H;
  try {
    current = await start();
  } catch (err) {
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    ...current,
    dir,
    port,
    get pid() {
      return current.pid;
    },
    stop: () => current.stop(),
    kill: () => current.kill(),
    async restart() {
      if (isAlive(current.pid)) await current.stop();
      current = await start();
    },
    async dispose() {
      if (isAlive(current.pid)) await current.kill();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function distinctFreePorts(n: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < n) ports.add(await freePort());
  return [...ports];
}

export async function startPrivateKafka(opts: { heapMb?: number; log?: Log } = {}): Promise<PrivateKafka> {
  const log = opts.log ?? silentLog;
  await provisionKafka(log);
  const [port, controllerPort] = (await distinctFreePorts(2)) as [number, number];
  const dir = privateDir('kafka');
  const server = await privateServer(dir, port, () => startKafka({ dir, port, controllerPort, heapMb: opts.heapMb ?? 384, log }));
  return Object.assign(server, { controllerPort });
}

export async function startPrivateRedis(opts: { log?: Log } = {}): Promise<PrivateRedis> {
  const log = opts.log ?? silentLog;
  const [port] = (await distinctFreePorts(1)) as [number];
  const dir = privateDir('redis');
  return privateServer(dir, port, () => startRedis({ dir, port, log }));
}

export async function startPrivatePostgres(opts: { log?: Log } = {}): Promise<PrivatePostgres> {
  const log = opts.log ?? silentLog;
  await provisionPostgres(log);
  const [port] = (await distinctFreePorts(1)) as [number];
  const dir = privateDir('postgres');
  return privateServer(dir, port, () => startPostgres({ dir, port, log }));
}

/**
 * A throwaway MongoDB-compatible server: FerretDB on its own PostgreSQL cluster by default (backend
 * from PUSH_MONGO_BACKEND unless given), on SQLite when asked, or mongod when installed.
 */
export async function startPrivateMongo(opts: { log?: Log; backend?: MongoBackend } = {}): Promise<PrivateMongo> {
  const log = opts.log ?? silentLog;
  const backend = opts.backend ?? mongoBackend();
  await provisionMongo(log);
  if (mongoEngine() === 'mongod' || backend === 'sqlite') {
    const [port] = (await distinctFreePorts(1)) as [number];
    const dir = privateDir('mongo');
    return privateServer(dir, port, () => startMongo({ dir, port, log, storage: { backend: 'sqlite' } }));
  }
  const postgres = await startPrivatePostgres({ log });
  try {
    await ensureDatabase(postgres.dir, postgres.port, FERRET_ROLE, 'ferretdb', log);
    const url = postgresUrl(postgres.port, FERRET_ROLE, 'ferretdb');
    // Chosen once PostgreSQL holds its port, so the two cannot draw the same free port.
    const [port] = (await distinctFreePorts(1)) as [number];
    const dir = privateDir('ferretdb-pg');
    const mongo = await privateServer(dir, port, () => startMongo({ dir, port, log, storage: { backend: 'postgresql', url } }));
    const disposeMongo = mongo.dispose;
    return Object.assign(mongo, {
      postgres,
      async dispose() {
        await disposeMongo();
        await postgres.dispose();
      },
    });
  } catch (err) {
    await postgres.dispose();
    throw err;
  }
}
