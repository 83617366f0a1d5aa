import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startStack, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { stack as infra } from './support/env.js';
import { tcpProxy } from './support/tcpProxy.js';

/**
 * Issue 12 #18 (readiness): /readyz answers from dependency state checked in
 * the background, so it is quick however busy the service is, and turns 503
 * within a bounded time when a dependency really goes away.
 */
describe('readiness', () => {
  let s: TestStack;
  const target = new URL(infra.redisUrl);
  const relay = tcpProxy(target.hostname, Number(target.port || 6379));
  before(async () => {
    await relay.open();
    s = await startStack({ pushers: 0, dispatchers: 0, env: { REDIS_URL: `redis://127.0.0.1:${relay.port}` } });
  });
  after(async () => {
    await s?.stop();
    await relay.cut();
  });

  const probe = async () => {
    const started = performance.now();
    const res = await fetch(`${s.collector.url}/readyz`, { signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as any;
    return { status: res.status, body, ms: performance.now() - started };
  };

  test('/readyz answers within 200 ms while the collector is busy storing and publishing', { timeout: 90_000 }, async (t) => {
    // Persistent submissions keep MongoDB's connection pool (20) and the producer busy.
    let stop = false;
    const load = Array.from({ length: 16 }, async (_, w) => {
      let n = 0;
      while (!stop) {
        await s
          .send({ to: { users: Array.from({ length: 50 }, (_, i) => `busy${w}-${i}`) }, payload: { n: n++, pad: 'p'.repeat(2000) } })
          .catch(() => undefined);
      }
    });
    try {
      // Let the load build up first.
      await new Promise((r) => setTimeout(r, 1500));
      const probes = [];
      for (let i = 0; i < 15; i++) {
        probes.push(await probe());
        await new Promise((r) => setTimeout(r, 100));
      }
      const slowest = Math.max(...probes.map((p) => p.ms));
      t.diagnostic(`/readyz under load: ${probes.map((p) => Math.round(p.ms)).join(', ')} ms`);
      assert.ok(slowest < 200, `slowest /readyz took ${Math.round(slowest)} ms (${probes.map((p) => Math.round(p.ms)).join(', ')})`);
      assert.ok(
        probes.every((p) => p.status === 200),
        JSON.stringify(probes.find((p) => p.status !== 200)?.body),
      );
    } finally {
      stop = true;
      await Promise.all(load);
    }
  });

  test('/readyz turns 503 naming the dependency within a bounded time when Redis is unreachable, and 200 again after', { timeout: 60_000 }, async () => {
    assert.equal((await probe()).status, 200);
    await relay.cut();
    const cutAt = Date.now();
    const down = await eventually(
      async () => {
        const p = await probe();
        assert.ok(p.ms < 200, `a probe took ${Math.round(p.ms)} ms`);
        return p.status === 503 ? p : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100, what: '/readyz 503 after Redis went away' },
    );
    const took = Date.now() - cutAt;
    // Background checks every 2 s, each bounded by 1.5 s.
    assert.ok(took < 4000, `turned 503 after ${took} ms`);
    assert.equal(down.body.status, 'not-ready');
    assert.equal(down.body.checks.redis.ok, false);
    assert.equal(down.body.checks.mongo.ok, true, 'only the missing dependency is named');

    await relay.open();
    await eventually(async () => (await probe()).status === 200, { timeoutMs: 20_000, intervalMs: 200, what: '/readyz 200 after Redis came back' });
  });
});
