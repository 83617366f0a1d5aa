import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPrivateRedis } from '../infra/stack.js';
import { spawnService, startService, type ServiceName } from './support/services.js';
import { eventually } from './support/eventually.js';

const SERVICES: ServiceName[] = ['auth', 'collector', 'dispatcher', 'admin', 'pusher'];

describe('service skeletons', () => {
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  before(async () => {
    redis = await startPrivateRedis();
  });
  after(async () => {
    await redis?.stop();
  });

  test('each service becomes ready, serves metrics, reports a lost dependency and stops on SIGTERM', { timeout: 120_000 }, async () => {
    const services = await Promise.all(SERVICES.map((name) => startService(name, { REDIS_URL: redis.url, NODE_ID: `skeleton-${process.pid}` })));
    try {
      for (const svc of services) {
        const health = await fetch(`${svc.url}/healthz`);
        assert.equal(health.status, 200, svc.name);
        assert.deepEqual(await health.json(), { status: 'ok', service: svc.name });

        const ready = await fetch(`${svc.url}/readyz`);
        assert.equal(ready.status, 200, `${svc.name} readyz`);
        const body = (await ready.json()) as { checks: Record<string, { ok: boolean }> };
        assert.equal(body.checks.redis?.ok, true, `${svc.name} redis check`);

        const metrics = await fetch(`${svc.url}/metrics`);
        assert.equal(metrics.status, 200);
        assert.match(metrics.headers.get('content-type') ?? '', /text\/plain/);
        assert.match(await metrics.text(), new RegExp(`push_process_cpu_user_seconds_total\\{service="${svc.name}"\\}`));

        const missing = await fetch(`${svc.url}/nope`);
        assert.equal(missing.status, 404);
        assert.equal(((await missing.json()) as { error: { code: string } }).error.code, 'NOT_FOUND');
      }

      await redis.stop();
      for (const svc of services) {
        const body = await eventually(
          async () => {
            const res = await fetch(`${svc.url}/readyz`);
            return res.status === 503 ? ((await res.json()) as { checks: Record<string, { ok: boolean }> }) : undefined;
          },
          { timeoutMs: 10_000, what: `${svc.name} /readyz 503 with redis stopped` },
        );
        assert.equal(body.checks.redis?.ok, false);
      }
      await redis.restart();
      for (const svc of services) {
        await eventually(async () => (await fetch(`${svc.url}/readyz`)).status === 200, {
          timeoutMs: 15_000,
          what: `${svc.name} ready again after redis restart`,
        });
      }
    } finally {
      const started = Date.now();
      const codes = await Promise.all(services.map((s) => s.stop('SIGTERM', 10_000)));
      assert.deepEqual(
        codes,
        SERVICES.map(() => 0),
        services.map((s) => s.output()).join('\n'),
      );
      assert.ok(Date.now() - started < 10_000, 'all services exited within 10 s');
    }
  });
});

describe('configuration errors', () => {
  const cases: [ServiceName, Record<string, string>, RegExp][] = [
    ['pusher', { PUSHER_PORT: 'abc' }, /PUSHER_PORT: expected an integer, got "abc"/],
    ['collector', { KAFKA_BROKERS: 'not a broker' }, /KAFKA_BROKERS: expected host:port/],
    ['auth', { PUSH_MODE: 'production', OPERATOR_KEY: 'x', DEMO_API_KEY: 'demo-key' }, /DEMO_API_KEY: the default demo key is refused/],
    ['dispatcher', { REDIS_URL: 'ftp://x' }, /REDIS_URL: expected a redis: or rediss: URL/],
    ['admin', { ADMIN_PORT: 'abc' }, /ADMIN_PORT: expected an integer, got "abc"/],
    ['pusher', { NODE_ID: 'has space' }, /NODE_ID: expected 1-64 characters/],
  ];
  for (const [name, env, message] of cases) {
    test(`${name} with ${JSON.stringify(env)} exits non-zero naming the variable`, { timeout: 20_000 }, async () => {
      const proc = spawnService(name, env);
      let stderr = '';
      proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
      assert.equal(code, 2);
      assert.match(stderr, message);
    });
  }
});
