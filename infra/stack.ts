import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { kafkaPort, mongoBackend, mongoPort, postgresPort, redisPort, type MongoBackend } from './config.js';
import {
  kafkaAnswers,
  kafkaCmdlineNeedles,
  kafkaPidFile,
  kafkaProvisioned,
  provisionKafka,
  startKafka,
  type KafkaHandle,
} from './kafka.js';
import {
  mongoAnswers,
  mongoCmdlineNeedles,
  mongoEngine,
  mongoPidFile,
  mongoProvisioned,
  provisionMongo,
  startMongo,
  type MongoHandle,
} from './mongo.js';
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
  stopPostgresPid,
  type PostgresHandle,
} from './postgres.js';
import { freePort, isAlive, portOpen, seconds, silentLog, stopPid, type Log, type ServerHandle, livePid } from './process.js';
import { provisionRedis, redisAnswers, redisCmdlineNeedles, redisPidFile, startRedis, type RedisHandle } from './redis.js';
import { checkGo, checkJava, checkMaven, checkRedisServer, type ToolCheck } from './tools.js';

export type ServerName = 'kafka' | 'redis' | 'postgres' | 'mongo';
/** In start order: FerretDB (mongo) needs its PostgreSQL. */
export const SERVER_NAMES: readonly ServerName[] = ['kafka', 'redis', 'postgres', 'mongo'];

export interface ServerStatus {
  name: ServerName;
  address: string;
  state: 'running' | 'stopped' | 'external';
  pid?: number;
  note?: string;
  /** Running, but it is ours from another configuration (a FerretDB of the other backend). */
  other?: boolean;
}

export const consoleLog: Log = (line) => console.log(`[infra] ${line}`);

/** A server of ours that may hold the port instead of the configured one (the FerretDB of the other backend). */
interface Alternate {
  pidFile: string;
  needles: string[];
  note: string;
}

interface ServerDef {
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
const FERRET_ROLE = 'ferretdb';

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
          describe: usePostgres
            ? `ferretdb on postgresql ${pgVersion ? postgresVersion(pgVersion) : '?'} at 127.0.0.1:${pPort}`
            : 'ferretdb on sqlite',
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
function stackServers(): ServerDef[] {
  const usePostgres = mongoEngine() === 'ferretdb' && mongoBackend() === 'postgresql';
  return [kafkaDef(), redisDef(), postgresDef(usePostgres), mongoDef(usePostgres)];
}

/** The live pid of ours on this server's port: the configured one, else an alternate (with its note). */
function ourPid(def: ServerDef): { pid: number; alternate?: Alternate } | undefined {
  const pid = livePid(def.pidFile, def.needles);
  if (pid !== undefined) return { pid };
  for (const alternate of def.alternates) {
    const alt = livePid(alternate.pidFile, alternate.needles);
    if (alt !== undefined) return { pid: alt, alternate };
  }
  return undefined;
}

async function statusOf(def: ServerDef): Promise<ServerStatus> {
  const base = { name: def.name, address: def.address };
  const ours = ourPid(def);
  if (ours !== undefined) {
    const answering = await def.answers();
    const note = [ours.alternate?.note ?? def.describe, answering ? '' : 'process alive but not answering'].filter(Boolean).join('; ');
    return { ...base, state: 'running', pid: ours.pid, ...(note ? { note } : {}), ...(ours.alternate ? { other: true } : {}) };
  }
  if (await portOpen(def.port)) {
    return (await def.answers())
      ? { ...base, state: 'external', note: 'not started by infra; left alone' }
      : { ...base, state: 'stopped', note: `port ${def.port} is in use by something that is not ${def.name}` };
  }
  return { ...base, state: 'stopped' };
}

/** Status of every server the configuration uses, plus any of ours still running that it no longer uses. */
export async function infraStatus(): Promise<ServerStatus[]> {
  const defs = stackServers().filter((d) => d.needed || ourPid(d) !== undefined);
  return Promise.all(defs.map(statusOf));
}

function describeFailures(results: PromiseSettledResult<unknown>[], defs: ServerDef[]): string[] {
  return results.flatMap((r, i) =>
    r.status === 'rejected' ? [`${defs[i]?.name}: ${r.reason instanceof Error ? r.reason.message : String(r.reason)}`] : [],
  );
}

export interface UpResult {
  /** Servers started by this call. */
  started: ServerName[];
  /** Ours, already running: reused. */
  reused: ServerName[];
  /** Served by something we did not start: used, never stopped by infraDown. */
  external: ServerName[];
}

/**
 * PostgreSQL only serves our FerretDB: not started when the Mongo port is served by something else
 * (an external MongoDB, or our FerretDB of the other backend, reused with a note).
 */
function withoutUnusedPostgres(todo: ServerDef[], statuses: Map<ServerName, ServerStatus>): ServerDef[] {
  const mongo = statuses.get('mongo');
  const ferretOnOurPostgres = todo.some((d) => d.name === 'mongo') || (mongo?.state === 'running' && !mongo.other);
  return ferretOnOurPostgres ? todo : todo.filter((d) => d.name !== 'postgres');
}

/** Starts each server once the one it needs (def.after) has started; the others in parallel. */
function startInOrder(ready: ServerDef[], todo: ServerDef[], log: Log, started: ServerName[]): Promise<PromiseSettledResult<void>[]> {
  const starting = new Map<ServerName, Promise<void>>();
  for (const d of ready) {
    starting.set(
      d.name,
      (async () => {
        if (d.after && todo.some((t) => t.name === d.after)) {
          const dep = starting.get(d.after);
          if (!dep || !(await dep.then(() => true, () => false))) throw new Error(`not started: it needs ${d.after}, which did not start`);
        }
        const t0 = Date.now();
        const handle = await d.start(log);
        log(`${d.name} ready at ${d.address} (${seconds(t0)}, pid ${handle.pid})`);
        started.push(d.name);
      })(),
    );
  }
  return Promise.allSettled(ready.map((d) => starting.get(d.name) as Promise<void>));
}

export async function infraUp(opts: { log?: Log } = {}): Promise<UpResult> {
  const log = opts.log ?? consoleLog;
  const defs = stackServers().filter((d) => d.needed);
  const statuses = new Map((await Promise.all(defs.map(statusOf))).map((st) => [st.name, st]));
  const result: UpResult = { started: [], reused: [], external: [] };
  let todo: ServerDef[] = [];
  const blocked: string[] = [];
  for (const def of defs) {
    const st = statuses.get(def.name) as ServerStatus;
    if (st.state === 'running') {
      log(`${def.name} already running at ${def.address} (pid ${st.pid})${st.note ? ` — ${st.note}` : ''}`);
      result.reused.push(def.name);
    } else if (st.state === 'external') {
      log(`${def.name}: ${def.address} is served by a server infra did not start; using it as is (external)`);
      result.external.push(def.name);
    } else if (st.note) {
      blocked.push(`${def.name}: ${st.note}`);
    } else {
      for (const p of def.extraPorts) if (await portOpen(p)) blocked.push(`${def.name}: port ${p} is already in use`);
      todo.push(def);
    }
  }
  if (blocked.length) throw new Error(blocked.join('\n'));
  todo = withoutUnusedPostgres(todo, statuses);
  if (!todo.length) return result;

  const seen = new Set<string>();
  const missing = todo.flatMap((d) => d.tools()).filter((t) => !t.ok && !seen.has(t.tool) && seen.add(t.tool));
  if (missing.length) {
    for (const t of missing) log(`missing ${t.tool} (found: ${t.found}) — ${t.hint}`);
    throw new Error(`missing tools: ${missing.map((t) => t.tool).join(', ')}`);
  }
  const mongo = todo.find((d) => d.name === 'mongo');
  if (mongo) log(`mongo: using ${mongo.describe ?? mongoEngine()}`);

  const provisioned = await Promise.allSettled(todo.map((d) => d.provision(log)));
  const errors = describeFailures(provisioned, todo);
  const ready = todo.filter((_, i) => provisioned[i]?.status === 'fulfilled');
  errors.push(...describeFailures(await startInOrder(ready, todo, log, result.started), ready));
  // The caller still owns what did start (npm start stops it on its way out).
  if (errors.length) throw Object.assign(new Error(errors.join('\n')), { started: result.started });
  return result;
}

async function stopOurs(d: ServerDef, log: Log): Promise<boolean> {
  const ours = ourPid(d);
  if (ours === undefined) {
    fs.rmSync(d.pidFile, { force: true });
    log(`${d.name} not running (nothing of ours to stop)`);
    return false;
  }
  const t0 = Date.now();
  log(`stopping ${d.name} (pid ${ours.pid})...`);
  if (d.name === 'postgres') await stopPostgresPid(ours.pid, d.pidFile);
  else await stopPid(ours.pid, ours.alternate?.pidFile ?? d.pidFile);
  log(`${d.name} stopped (${seconds(t0)})`);
  return true;
}

/** Stops exactly what our pid files name (never external servers); PostgreSQL last, once FerretDB is gone. */
export async function infraDown(opts: { only?: string[]; log?: Log } = {}): Promise<{ stopped: ServerName[] }> {
  const log = opts.log ?? consoleLog;
  const unknown = (opts.only ?? []).filter((n) => !SERVER_NAMES.includes(n as ServerName));
  if (unknown.length) throw new Error(`unknown server(s): ${unknown.join(', ')} (expected ${SERVER_NAMES.join(', ')})`);
  const defs = stackServers().filter((d) => !opts.only?.length || opts.only.includes(d.name));
  const stopped: ServerName[] = [];
  const stopAll = (group: ServerDef[]): Promise<unknown> =>
    Promise.all(group.map(async (d) => (await stopOurs(d, log)) && stopped.push(d.name)));
  await stopAll(defs.filter((d) => d.name !== 'postgres'));
  await stopAll(defs.filter((d) => d.name === 'postgres'));
  return { stopped };
}

// ---- throwaway instances for fault tests -------------------------------------------------------

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

async function privateServer<H extends ServerHandle>(
  dir: string,
  port: number,
  start: () => Promise<H>,
): Promise<H & PrivateControls> {
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
  const server = await privateServer(dir, port, () =>
    startKafka({ dir, port, controllerPort, heapMb: opts.heapMb ?? 384, log }),
  );
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
