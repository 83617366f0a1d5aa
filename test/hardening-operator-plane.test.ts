import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { BOOTS_KEY, heartbeatNode } from '../store/nodeRegistry.js';
import { stack as infra } from './support/env.js';
import { eventually } from './support/eventually.js';
import { adminCall, OPERATOR_AUTH, startStack, wsOf, type TestStack } from './support/stack.js';

const MAX_FAILURES = 3;
const WINDOW_SECONDS = 2;

/** An HTTP server on 127.0.0.2 (loopback, but not an allowed node host in this stack) that counts what reaches it. */
async function startCatcher(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = http.createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.writeHead(202, { 'content-type': 'application/json' }).end('{"status":"draining"}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.2', resolve));
  return {
    url: `http://127.0.0.2:${(server.address() as AddressInfo).port}`,
    hits,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

describe('operator plane (issue 12 #15, #16)', () => {
  let s: TestStack;
  let redis: Redis;
  before(async () => {
    s = await startStack({
      env: {
        OPERATOR_AUTH_MAX_FAILURES: String(MAX_FAILURES),
        OPERATOR_AUTH_WINDOW_SECONDS: String(WINDOW_SECONDS),
        NODE_URL_ALLOWED_HOSTS: '127.0.0.1',
        PUSHER_NODE_PRUNE_MS: '1000',
        STATUS_SAMPLE_MS: '200',
      },
    });
    redis = new Redis(infra.redisUrl, { keyPrefix: s.env.REDIS_KEY_PREFIX, lazyConnect: false });
  });
  after(async () => {
    redis?.disconnect();
    await s?.stop();
  });

  const statusNodes = async () => {
    const r = await adminCall(s, '/v1/admin/status');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body.nodes as { id: string; url: string; adminUrl: string }[];
  };

  test('the pusher serves drain on its loopback admin listener only; health stays on the public port', { timeout: 30_000 }, async () => {
    const pusher = s.pushers[0]!;
    const publicDrain = await fetch(`${pusher.url}/v1/admin/drain`, { method: 'POST', headers: { authorization: OPERATOR_AUTH } });
    assert.equal(publicDrain.status, 404);
    assert.equal(((await publicDrain.json()) as any).error.code, 'NOT_FOUND');
    assert.equal((await fetch(`${pusher.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${pusher.url}/readyz`)).status, 200);

    const node = (await statusNodes()).find((n) => n.url === wsOf(pusher.url))!;
    assert.match(node.adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(node.adminUrl, pusher.url);
    for (const path of ['/healthz', '/readyz', '/metrics']) assert.equal((await fetch(`${node.adminUrl}${path}`)).status, 200, path);
    const unauthorized = await fetch(`${node.adminUrl}/v1/admin/drain`, { method: 'POST', headers: { authorization: 'Bearer not-the-key' } });
    assert.equal(unauthorized.status, 401);
    // The failure above counts against this address on the pusher: let its window pass for the next test.
    await new Promise((r) => setTimeout(r, WINDOW_SECONDS * 1000));
  });

  test('failed operator authentications are throttled per address: 429 with Retry-After, then allowed again', { timeout: 30_000 }, async () => {
    for (let i = 0; i < MAX_FAILURES; i++) {
      const r = await adminCall(s, '/v1/admin/status', undefined, `Bearer guess-${i}`);
      assert.equal(r.status, 401, `attempt ${i + 1}`);
    }
    // Even the right key is refused from this address until the window ends.
    const res = await fetch(`${s.admin.url}/v1/admin/status`, { headers: { authorization: OPERATOR_AUTH } });
    assert.equal(res.status, 429);
    assert.equal(((await res.json()) as any).error.code, 'RATE_LIMITED');
    const retryAfter = Number(res.headers.get('retry-after'));
    assert.ok(retryAfter >= 1 && retryAfter <= WINDOW_SECONDS, `Retry-After ${res.headers.get('retry-after')}`);
    await new Promise((r) => setTimeout(r, retryAfter * 1000));
    assert.equal((await adminCall(s, '/v1/admin/status')).status, 200);

    // The pusher's admin listener counts the same way.
    const adminUrl = (await statusNodes())[0]!.adminUrl;
    const drain = (auth: string) => fetch(`${adminUrl}/v1/admin/drain`, { method: 'POST', headers: { authorization: auth } });
    for (let i = 0; i < MAX_FAILURES; i++) assert.equal((await drain(`Bearer guess-${i}`)).status, 401);
    const refused = await drain('Bearer one-more-guess');
    assert.equal(refused.status, 429);
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
  });

  test('the admin service calls only node URLs whose host is allowed', { timeout: 30_000 }, async () => {
    const catcher = await startCatcher();
    try {
      const registered = Date.now();
      await heartbeatNode(
        redis,
        { id: 'elsewhere', boot: 'b1', url: 'ws://127.0.0.2:1/v1/ws', adminUrl: catcher.url, connections: 0, draining: false },
        30_000,
      );
      const drain = await adminCall(s, '/v1/admin/nodes/elsewhere/drain', {});
      assert.equal(drain.status, 403, JSON.stringify(drain.body));
      assert.equal(drain.body.error.code, 'NODE_URL_NOT_ALLOWED');
      // The status API lists it as not ready without calling it, and the sampler scraped around it.
      await eventually(
        async () => {
          const r = await adminCall(s, '/v1/admin/status');
          const svc = r.body.services.find((x: { name: string }) => x.name === 'pusher elsewhere');
          const sampledSince = r.body.throughput.some((p: { at: string }) => Date.parse(p.at) > registered + 500);
          return svc && svc.ready === false && /NODE_URL_ALLOWED_HOSTS/.test(svc.error) && sampledSince;
        },
        { what: 'a status report and a sample after the registration', timeoutMs: 15_000, intervalMs: 200 },
      );
      assert.deepEqual(catcher.hits, []);
    } finally {
      await redis.multi().zrem('push:nodes', 'elsewhere').hdel(BOOTS_KEY, 'elsewhere').del('push:node:elsewhere').exec();
      await catcher.close();
    }
  });

  test('a node that stopped heartbeating leaves push:nodes, push:boots and the status API', { timeout: 60_000 }, async () => {
    await heartbeatNode(redis, { id: 'ghost', boot: 'ghost-boot', url: 'ws://127.0.0.1:1/v1/ws', connections: 0, draining: false }, 3000);
    // Listed while its heartbeat is fresh (the status report is cached for a second).
    await eventually(async () => (await statusNodes()).some((n) => n.id === 'ghost'), { what: 'the ghost listed', timeoutMs: 2500, intervalMs: 200 });
    await eventually(
      async () => {
        const [inNodes, boots, nodes] = await Promise.all([redis.zscore('push:nodes', 'ghost'), redis.hget(BOOTS_KEY, 'ghost'), statusNodes()]);
        return inNodes === null && boots === null && !nodes.some((n) => n.id === 'ghost');
      },
      // Lapses after 3 s, prunable 1 s later, pruned on the next pusher heartbeat (every 5 s).
      { what: 'the ghost node pruned', timeoutMs: 20_000, intervalMs: 250 },
    );
    // The live pusher is still there.
    assert.equal((await statusNodes()).length, 1);
    assert.notEqual(await redis.hget(BOOTS_KEY, (await statusNodes())[0]!.id), null);
  });
});
