/**
 * The servers of the shared local stack (Kafka, Redis, PostgreSQL, FerretDB or mongod):
 * where each one lives, how to tell it answers, provision it and start it. stack.ts
 * brings them up and down in order.
 */
import path from 'node:path';
import { kafkaPort, mongoBackend, mongoPort, postgresPort, redisPort, type MongoBackend } from './config.js';
import { kafkaAnswers, kafkaCmdlineNeedles, kafkaPidFile, kafkaProvisioned, provisionKafka, startKafka } from './kafka.js';
import { mongoAnswers, mongoCmdlineNeedles, mongoEngine, mongoPidFile, mongoProvisioned, provisionMongo, startMongo } from './mongo.js';
import { infraPath, repoRoot } from './paths.js';
import {
  checkPostgres,
  ensureDatabase,
  postgresAnswers,
  postgresBinDir,
  postgresCmdlineNeedles,
  postgresPidFile,
  postgresUrl,
  postgresVersion,
  provisionPostgres,
  startPostgres,
} from './postgres.js';
import type { Log, ServerHandle } from './process.js';
import { provisionRedis, redisAnswers, redisCmdlineNeedles, redisPidFile, startRedis } from './redis.js';
import { checkGo, checkJava, checkMaven, checkRedisServer, type ToolCheck } from './tools.js';

export type ServerName = 'kafka' | 'redis' | 'postgres' | 'mongo';
/** In start order: FerretDB (mongo) needs its PostgreSQL. */
export const SERVER_NAMES: readonly ServerName[] = ['kafka', 'redis', 'postgres', 'mongo'];

/** A server of ours that may hold the port instead of the configured one (the FerretDB of the other backend). */
export interface Alternate {
  pidFile: string;
  needles: string[];
  note: string;
}

export interface ServerDef {
  name: ServerName;
  address: string;
  port: number;
  /** Other ports the server binds (Kafka's controller). */
  extraPorts: number[];
  pidFile: string;
  needles: string[];
  /** False when the current configuration does not use this server (PostgreSQL under FerretDB/SQLite or mongod). */
  needed: boolean;
  /** Started only once this one has started. */
  after?: ServerName;
  alternates: Alternate[];
  /** Status note while it runs (which backend FerretDB stores into). */
  describe?: string;
  answers(): Promise<boolean>;
  tools(): ToolCheck[];
  provision(log: Log): Promise<unknown>;
  start(log: Log): Promise<ServerHandle>;
}

/** FerretDB's role and database in the private cluster; a non-default Mongo port gets its own database. */
const ferretDatabase = (mongoPort: number): string => (mongoPort === 27017 ? 'ferretdb' : `ferretdb_${mongoPort}`);
export const FERRET_ROLE = 'ferretdb';

/** State dir of FerretDB per backend: separate, so switching backends never mixes their metadata. */
function ferretDir(backend: MongoBackend, port: number): string {
  if (backend === 'sqlite') return infraPath('mongo');
  return infraPath(port === 27017 ? 'ferretdb-pg' : `ferretdb-pg-${port}`);
}

function kafkaDef(): ServerDef {
  const kPort = kafkaPort();
  const kDir = infraPath('kafka');
  return {
    name: 'kafka',
    address: `127.0.0.1:${kPort}`,
    port: kPort,
    extraPorts: [kPort + 1],
    pidFile: kafkaPidFile(kDir),
    needles: kafkaCmdlineNeedles(kDir),
    needed: true,
    alternates: [],
    answers: () => kafkaAnswers(kPort),
    tools: () => [checkJava(), ...(kafkaProvisioned() ? [] : [checkMaven()])],
    provision: provisionKafka,
    start: (log) => startKafka({ dir: kDir, port: kPort, controllerPort: kPort + 1, log }),
  };
}

function redisDef(): ServerDef {
  const rPort = redisPort();
  // A Redis on another port than the default gets its own directory (and pid file), so a
  // second local stack never takes the shared server for its own, nor stops it.
  const rDir = infraPath(rPort === 6379 ? 'redis' : `redis-${rPort}`);
  return {
    name: 'redis',
    address: `redis://127.0.0.1:${rPort}`,
    port: rPort,
    extraPorts: [],
    pidFile: redisPidFile(rDir),
    needles: redisCmdlineNeedles(rPort),
    needed: true,
    alternates: [],
    answers: () => redisAnswers(rPort),
    tools: () => [checkRedisServer()],
    provision: provisionRedis,
    start: (log) => startRedis({ dir: rDir, port: rPort, log }),
  };
}

function postgresDef(needed: boolean): ServerDef {
  const pPort = postgresPort();
  const pDir = infraPath('postgres');
  return {
    name: 'postgres',
    address: `postgresql://127.0.0.1:${pPort}`,
    port: pPort,
    extraPorts: [],
    pidFile: postgresPidFile(pDir),
    needles: postgresCmdlineNeedles(pDir, pPort),
    needed,
    alternates: [],
    answers: () => postgresAnswers(pPort),
    tools: () => [checkPostgres()],
    provision: provisionPostgres,
    start: (log) => startPostgres({ dir: pDir, port: pPort, log }),
  };
}

function mongoDef(usePostgres: boolean): ServerDef {
  const mPort = mongoPort();
  const engine = mongoEngine();
  const backend: MongoBackend = usePostgres ? 'postgresql' : 'sqlite';
  const other: MongoBackend = usePostgres ? 'sqlite' : 'postgresql';
  const mDir = ferretDir(backend, mPort);
  const otherDir = ferretDir(other, mPort);
  const pPort = postgresPort();
  const pgVersion = postgresBinDir();
  return {
    name: 'mongo',
    address: `mongodb://127.0.0.1:${mPort}`,
    port: mPort,
    extraPorts: [],
    pidFile: mongoPidFile(mDir),
    needles: mongoCmdlineNeedles(mDir, mPort),
    needed: true,
    ...(usePostgres ? { after: 'postgres' as const } : {}),
    alternates:
      engine === 'ferretdb'
        ? [
            {
              pidFile: mongoPidFile(otherDir),
              needles: mongoCmdlineNeedles(otherDir, mPort),
              note: `ferretdb on ${other} (from ${path.relative(repoRoot, otherDir)}), not the configured ${backend}: to switch, npm run infra:down mongo, then npm run infra:up`,
            },
          ]
        : [],
    ...(engine === 'ferretdb'
      ? {
          describe: usePostgres ? `ferretdb on postgresql ${pgVersion ? postgresVersion(pgVersion) : '?'} at 127.0.0.1:${pPort}` : 'ferretdb on sqlite',
        }
      : {}),
    answers: () => mongoAnswers(mPort),
    tools: () => (mongoProvisioned() ? [] : [checkGo()]),
    provision: provisionMongo,
    async start(log) {
      if (!usePostgres) return startMongo({ dir: mDir, port: mPort, log, storage: { backend: 'sqlite' } });
      const database = ferretDatabase(mPort);
      await ensureDatabase(infraPath('postgres'), pPort, FERRET_ROLE, database, log);
      const url = postgresUrl(pPort, FERRET_ROLE, database);
      return startMongo({ dir: mDir, port: mPort, log, storage: { backend: 'postgresql', url } });
    },
  };
}

/** Every server of the local stack, in start order (SERVER_NAMES). */
export function stackServers(): ServerDef[] {
  const usePostgres = mongoEngine() === 'ferretdb' && mongoBackend() === 'postgresql';
  return [kafkaDef(), redisDef(), postgresDef(usePostgres), mongoDef(usePostgres)];
}
