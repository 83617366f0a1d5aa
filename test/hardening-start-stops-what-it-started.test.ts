import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { Redis } from 'ioredis';
import { infraPath } from '../infra/paths.js';
import { createStackStopper } from '../scripts/stopStack.js';
import { freePort, ROOT } from './support/services.js';
import { eventually } from './support/eventually.js';
import { stack as infra, uniqueId } from './support/env.js';

/**
 * Issue 12 #17: `npm start` whose pusher cannot start must stop every server
 * it started. Kafka and MongoDB are the shared ones (already running, so
 * reused and left alone); Redis is pointed at a port nobody uses, so this run
 * starts a Redis of its own (in .infra/redis-<port>) that it must stop again.
 */

const portOpen = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => (socket.destroy(), resolve(true)));
    socket.once('error', () => resolve(false));
  });

/** `npm start` as a user runs it (no mode, no keys), on free ports and a Redis port nobody uses. */
async function runStart(redisPort: number, pusherPort: number) {
  const [authPort, collectorPort, dispatcherPort, adminPort, demoPort] = await Promise.all(Array.from({ length: 5 }, () => freePort()));
  const id = uniqueId('start').replace(/[^A-Za-z0-9]/g, '');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    REDIS_URL: `redis://127.0.0.1:${redisPort}`,
    KAFKA_TOPIC_PREFIX: `${id}.`,
    MONGO_DB: id,
    PUSHERS: '1',
    AUTH_PORT: String(authPort),
    COLLECTOR_PORT: String(collectorPort),
    DISPATCHER_METRICS_PORT: String(dispatcherPort),
    ADMIN_PORT: String(adminPort),
    DEMO_PORT: String(demoPort),
    PUSHER_PORT: String(pusherPort),
    LOG_LEVEL: 'info',
  };
  for (const name of ['PUSH_MODE', 'OPERATOR_KEY', 'DEMO_API_KEY', 'REDIS_KEY_PREFIX', 'PUSH_TEST']) delete env[name];
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'scripts/start.ts')], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return { child, exited, output: () => out, authUrl: `http://127.0.0.1:${authPort}` };
}

describe('npm start stops what it started', () => {
  const redisPorts: number[] = [];
  const blockers: net.Server[] = [];
  after(async () => {
    for (const b of blockers) b.close();
    for (const redisPort of redisPorts) {
      // Only if a run left its Redis behind (the bug): stop that one server, found by its own pid file.
      const dir = infraPath(`redis-${redisPort}`);
      const pid = Number(fs.existsSync(path.join(dir, 'redis.pid')) ? fs.readFileSync(path.join(dir, 'redis.pid'), 'utf8') : NaN);
      if (Number.isInteger(pid) && (await portOpen(redisPort))) process.kill(pid, 'SIGTERM');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a pusher port already taken: the stack stops, and so does the Redis this run started; shared servers stay up', { timeout: 180_000 }, async () => {
    const pusherPort = await freePort();
    const redisPort = await freePort();
    redisPorts.push(redisPort);
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(pusherPort, '127.0.0.1', resolve));
    blockers.push(blocker);

    const run = await runStart(redisPort, pusherPort);
    const timer = setTimeout(() => run.child.kill('SIGINT'), 150_000);
    const code = await run.exited;
    clearTimeout(timer);
    const out = run.output();

    assert.equal(code, 1, out);
    assert.match(out, /redis ready at redis:\/\/127\.0\.0\.1:\d+/, 'this run started its own Redis');
    assert.match(out, /development mode: demo app ready/, 'npm start runs the services in development mode');
    assert.match(out, /\[start\] pusher-1 exited \(1\); stopping the stack/);
    assert.match(out, /redis stopped/, out);
    assert.equal(await portOpen(redisPort), false, 'the Redis this run started is stopped');
    assert.doesNotMatch(out, /stopping (kafka|mongo)/, 'the shared servers were reused, not stopped');
    const shared = new Redis(infra.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
    try {
      await shared.connect();
      assert.equal(await shared.ping(), 'PONG');
    } finally {
      shared.disconnect();
    }
  });

  test('Ctrl-C on a running stack: the services stop, then the Redis this run started; exit 0', { timeout: 180_000 }, async () => {
    const [pusherPort, redisPort] = await Promise.all([freePort(), freePort()]);
    redisPorts.push(redisPort);
    const run = await runStart(redisPort, pusherPort);
    try {
      await eventually(() => run.output().includes('Push platform is up (Ctrl-C to stop)') || run.child.exitCode !== null, {
        timeoutMs: 150_000,
        intervalMs: 200,
        what: 'npm start to be up',
      });
      assert.equal(run.child.exitCode, null, run.output());
      // The development experience: the demo app and its key work.
      const token = await fetch(`${run.authUrl}/v1/tokens`, {
        method: 'POST',
        headers: { authorization: 'Bearer demo-key', 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'alice', deviceId: 'laptop' }),
      });
      assert.equal(token.status, 200);
      assert.equal(await portOpen(redisPort), true);
    } finally {
      run.child.kill('SIGINT');
    }
    const code = await Promise.race([run.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000))]);
    const out = run.output();
    assert.equal(code, 0, out);
    assert.match(out, /\[start\] stopping the infrastructure this run started: redis/);
    assert.match(out, /redis stopped/);
    assert.equal(await portOpen(redisPort), false, 'the Redis this run started is stopped');
  });

  test('stop requests that overlap (a service exit, then the failed wait) finish one stop: infrastructure down, then one exit with the worst code', async () => {
    const events: string[] = [];
    let releaseServices!: () => void;
    const servicesStopped = new Promise<void>((r) => (releaseServices = r));
    let exited!: (code: number) => void;
    const exit = new Promise<number>((r) => (exited = r));
    const stopper = createStackStopper({
      stopServices: async () => {
        events.push('services');
        await servicesStopped;
      },
      startedInfra: async () => ['kafka', 'redis'],
      infraDown: async (only) => {
        await new Promise((r) => setTimeout(r, 20));
        events.push(`infra-down ${only.join(',')}`);
      },
      log: () => undefined,
      exit: (code) => {
        events.push(`exit ${code}`);
        exited(code);
      },
    });
    void stopper.stop(1); // a service exited
    void stopper.stop(1); // the wait for it failed
    void stopper.stop(0); // and Ctrl-C, for good measure
    assert.equal(stopper.stopping, true);
    releaseServices();
    assert.equal(await exit, 1);
    assert.deepEqual(events, ['services', 'infra-down kafka,redis', 'exit 1']);
  });
});
