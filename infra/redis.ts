import fs from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import { infraPath } from './paths.js';
import { assertPortsFree, livePid, pidControls, runCommand, spawnDetached, waitReady, which, withProgress, type Log, type ServerHandle } from './process.js';
import { canAptInstall } from './tools.js';

export interface RedisOptions {
  dir: string;
  port: number;
  log: Log;
}

export interface RedisHandle extends ServerHandle {
  url: string;
}

export const redisPidFile = (dir: string): string => path.join(dir, 'redis.pid');
/** redis-server rewrites its process title to "redis-server 127.0.0.1:<port>", so match on that. */
export const redisCmdlineNeedles = (port: number): string[] => ['redis-server', `:${port}`];

let aptUpdated = false;
let installing: Promise<string> | undefined;

/** Path of redis-server; installs Debian's package when missing and we are root with apt-get. */
export function provisionRedis(log: Log): Promise<string> {
  const found = which('redis-server');
  if (found) return Promise.resolve(found);
  if (!canAptInstall()) {
    return Promise.reject(new Error('redis-server is not installed: run `apt-get install redis-server` as root (or put redis-server on PATH)'));
  }
  installing ??= (async () => {
    const logFile = infraPath('redis', 'apt.log');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    await withProgress(log, 'redis: installing redis-server with apt-get', async () => {
      if (!aptUpdated) {
        log('redis: apt-get update...');
        await runCommand('apt-get', ['update'], { env, logFile });
        aptUpdated = true;
      }
      log('redis: apt-get install -y redis-server...');
      await runCommand('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], { env, logFile });
    });
    const installed = which('redis-server') ?? (fs.existsSync('/usr/bin/redis-server') ? '/usr/bin/redis-server' : undefined);
    if (!installed) throw new Error(`apt-get installed redis-server but it is not on PATH (see ${logFile})`);
    return installed;
  })();
  return installing;
}

/** True when a Redis server answers PING at 127.0.0.1:port. */
export async function redisAnswers(port: number, timeoutMs = 1000): Promise<boolean> {
  const client = new Redis({
    host: '127.0.0.1',
    port,
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    retryStrategy: () => null,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return (await client.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}

export function redisHandle(dir: string, port: number, pid: number): RedisHandle {
  const pidFile = redisPidFile(dir);
  return {
    url: `redis://127.0.0.1:${port}`,
    ...pidControls(pid, pidFile),
  };
}

export async function startRedis(opts: RedisOptions): Promise<RedisHandle> {
  const { dir, port } = opts;
  const pidFile = redisPidFile(dir);
  fs.mkdirSync(dir, { recursive: true });
  const running = livePid(pidFile, redisCmdlineNeedles(port));
  if (running !== undefined) throw new Error(`redis in ${dir} is already running (pid ${running})`);
  await assertPortsFree('redis', [port]);
  const bin = await provisionRedis(opts.log);

  // Pure cache/state for tests and dev: no RDB snapshots, no AOF.
  const args = [
    '--bind',
    '127.0.0.1',
    '--port',
    String(port),
    '--dir',
    dir,
    '--save',
    '',
    '--appendonly',
    'no',
    '--daemonize',
    'no',
    '--protected-mode',
    'yes',
  ];
  const logFile = path.join(dir, 'stdout.log');
  const child = await spawnDetached(bin, args, { cwd: dir, logFile, pidFile });
  const handle = redisHandle(dir, port, child.pid);
  try {
    await waitReady(`redis on 127.0.0.1:${port}`, child.pid, () => redisAnswers(port), {
      timeoutMs: 20_000,
      logFiles: [logFile],
    });
  } catch (err) {
    await handle.kill();
    throw err;
  }
  return handle;
}
