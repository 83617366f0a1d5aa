import crypto from 'node:crypto';
import fs from 'node:fs';
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
import { infraPath } from './paths.js';
import { freePort, isAlive, livePid, portOpen, seconds, silentLog, stopPid, type Log, type ServerHandle } from './process.js';
import { provisionRedis, redisAnswers, redisCmdlineNeedles, redisPidFile, startRedis, type RedisHandle } from './redis.js';
import { checkGo, checkJava, checkMaven, checkRedisServer, type ToolCheck } from './tools.js';

export type ServerName = 'kafka' | 'redis' | 'mongo';
export const SERVER_NAMES: readonly ServerName[] = ['kafka', 'redis', 'mongo'];

export interface ServerStatus {
  name: ServerName;
  address: string;
  state: 'running' | 'stopped' | 'external';
  pid?: number;
  note?: string;
}

export const consoleLog: Log = (line) => console.log(`[infra] ${line}`);

interface ServerDef {
  name: ServerName;
  address: string;
  port: number;
  /** Other ports the server binds (Kafka's controller). */
  extraPorts: number[];
  pidFile: string;
  needles: string[];
  answers(): Promise<boolean>;
  tools(): ToolCheck[];
  provision(log: Log): Promise<unknown>;
  start(log: Log): Promise<ServerHandle>;
}

const LOOPBACK = /^(127(\.\d{1,3}){3}|localhost|::1|\[::1\])$/i;

function loopbackPort(envName: string, value: string, host: string, port: number): number {
  if (!LOOPBACK.test(host)) {
    throw new Error(`${envName}=${value}: the local stack only runs on loopback (127.0.0.1/localhost), not on "${host}"`);
  }
  if (!Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`${envName}=${value}: invalid port`);
  return port;
}

function kafkaPort(): number {
  const value = process.env.KAFKA_BROKERS || '127.0.0.1:9092';
  const first = (value.split(',')[0] ?? '').trim().replace(/^[a-z]+:\/\//i, '');
  const m = first.match(/^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/);
  if (!m) throw new Error(`KAFKA_BROKERS=${value}: expected host:port`);
  return loopbackPort('KAFKA_BROKERS', value, m[1] ?? '', Number(m[2] ?? 9092));
}

function redisPort(): number {
  const value = process.env.REDIS_URL || 'redis://127.0.0.1:6379';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new Error(`REDIS_URL=${value}: not a URL`);
  }
  if (url.protocol !== 'redis:') throw new Error(`REDIS_URL=${value}: only redis:// is supported locally`);
  return loopbackPort('REDIS_URL', value, url.hostname, Number(url.port || 6379));
}

function mongoPort(): number {
  const value = process.env.MONGO_URL || 'mongodb://127.0.0.1:27017';
  const m = value.match(/^mongodb:\/\/(?:[^@/]*@)?(\[[^\]]+\]|[^:/?,]+)(?::(\d+))?/);
  if (!m) throw new Error(`MONGO_URL=${value}: expected mongodb://host:port (mongodb+srv is not supported locally)`);
  return loopbackPort('MONGO_URL', value, m[1] ?? '', Number(m[2] ?? 27017));
}

function stackServers(): ServerDef[] {
  const kPort = kafkaPort();
  const kDir = infraPath('kafka');
  const rPort = redisPort();
  // A Redis on another port than the default gets its own directory (and pid file), so a
  // second local stack never takes the shared server for its own, nor stops it.
  const rDir = infraPath(rPort === 6379 ? 'redis' : `redis-${rPort}`);
  const mPort = mongoPort();
  const mDir = infraPath('mongo');
  return [
    {
      name: 'kafka',
      address: `127.0.0.1:${kPort}`,
      port: kPort,
      extraPorts: [kPort + 1],
      pidFile: kafkaPidFile(kDir),
      needles: kafkaCmdlineNeedles(kDir),
      answers: () => kafkaAnswers(kPort),
      tools: () => [checkJava(), ...(kafkaProvisioned() ? [] : [checkMaven()])],
      provision: provisionKafka,
      start: (log) => startKafka({ dir: kDir, port: kPort, controllerPort: kPort + 1, log }),
    },
    {
      name: 'redis',
      address: `redis://127.0.0.1:${rPort}`,
      port: rPort,
      extraPorts: [],
      pidFile: redisPidFile(rDir),
      needles: redisCmdlineNeedles(rPort),
      answers: () => redisAnswers(rPort),
      tools: () => [checkRedisServer()],
      provision: provisionRedis,
      start: (log) => startRedis({ dir: rDir, port: rPort, log }),
    },
    {
      name: 'mongo',
      address: `mongodb://127.0.0.1:${mPort}`,
      port: mPort,
      extraPorts: [],
      pidFile: mongoPidFile(mDir),
      needles: mongoCmdlineNeedles(mDir, mPort),
      answers: () => mongoAnswers(mPort),
      tools: () => (mongoProvisioned() ? [] : [checkGo()]),
      provision: provisionMongo,
      start: (log) => startMongo({ dir: mDir, port: mPort, log }),
    },
  ];
}

async function statusOf(def: ServerDef): Promise<ServerStatus> {
  const base = { name: def.name, address: def.address };
  const pid = livePid(def.pidFile, def.needles);
  if (pid !== undefined) {
    return { ...base, state: 'running', pid, ...((await def.answers()) ? {} : { note: 'process alive but not answering' }) };
  }
  if (await portOpen(def.port)) {
    return (await def.answers())
      ? { ...base, state: 'external', note: 'not started by infra; left alone' }
      : { ...base, state: 'stopped', note: `port ${def.port} is in use by something that is not ${def.name}` };
  }
  return { ...base, state: 'stopped' };
}

export async function infraStatus(): Promise<ServerStatus[]> {
  return Promise.all(stackServers().map(statusOf));
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

export async function infraUp(opts: { log?: Log } = {}): Promise<UpResult> {
  const log = opts.log ?? consoleLog;
  const defs = stackServers();
  const statuses = await Promise.all(defs.map(statusOf));
  const result: UpResult = { started: [], reused: [], external: [] };
  const todo: ServerDef[] = [];
  const blocked: string[] = [];
  for (const [i, def] of defs.entries()) {
    const st = statuses[i] as ServerStatus;
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
  if (!todo.length) return result;

  const seen = new Set<string>();
  const missing = todo.flatMap((d) => d.tools()).filter((t) => !t.ok && !seen.has(t.tool) && seen.add(t.tool));
  if (missing.length) {
    for (const t of missing) log(`missing ${t.tool} (found: ${t.found}) — ${t.hint}`);
    throw new Error(`missing tools: ${missing.map((t) => t.tool).join(', ')}`);
  }
  if (todo.some((d) => d.name === 'mongo')) log(`mongo: using ${mongoEngine()}`);

  const provisioned = await Promise.allSettled(todo.map((d) => d.provision(log)));
  const errors = describeFailures(provisioned, todo);
  const ready = todo.filter((_, i) => provisioned[i]?.status === 'fulfilled');
  const startedResults = await Promise.allSettled(
    ready.map(async (d) => {
      const t0 = Date.now();
      const handle = await d.start(log);
      log(`${d.name} ready at ${d.address} (${seconds(t0)}, pid ${handle.pid})`);
      result.started.push(d.name);
    }),
  );
  errors.push(...describeFailures(startedResults, ready));
  // The caller still owns what did start (npm start stops it on its way out).
  if (errors.length) throw Object.assign(new Error(errors.join('\n')), { started: result.started });
  return result;
}

/** Stops exactly what our pid files name (never external servers). */
export async function infraDown(opts: { only?: string[]; log?: Log } = {}): Promise<{ stopped: ServerName[] }> {
  const log = opts.log ?? consoleLog;
  const unknown = (opts.only ?? []).filter((n) => !SERVER_NAMES.includes(n as ServerName));
  if (unknown.length) throw new Error(`unknown server(s): ${unknown.join(', ')} (expected ${SERVER_NAMES.join(', ')})`);
  const defs = stackServers().filter((d) => !opts.only?.length || opts.only.includes(d.name));
  const stopped: ServerName[] = [];
  await Promise.all(
    defs.map(async (d) => {
      const pid = livePid(d.pidFile, d.needles);
      if (pid === undefined) {
        fs.rmSync(d.pidFile, { force: true });
        log(`${d.name} not running (nothing of ours to stop)`);
        return;
      }
      const t0 = Date.now();
      log(`stopping ${d.name} (pid ${pid})...`);
      await stopPid(pid, d.pidFile);
      log(`${d.name} stopped (${seconds(t0)})`);
      stopped.push(d.name);
    }),
  );
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
export type PrivateMongo = MongoHandle & PrivateControls;

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

export async function startPrivateMongo(opts: { log?: Log } = {}): Promise<PrivateMongo> {
  const log = opts.log ?? silentLog;
  await provisionMongo(log);
  const [port] = (await distinctFreePorts(1)) as [number];
  const dir = privateDir('mongo');
  return privateServer(dir, port, () => startMongo({ dir, port, log }));
}
