import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { lookupRoutes, putRoutes, removeRoutes, routeKey } from '../store/routeTable.js';
import { heartbeatNode, lastNodeKey, removeNode } from '../store/nodeRegistry.js';
import { createConnectWrites } from '../pusher/src/connectWrites.js';
import { epochKey } from '../pusher/src/presence.js';
import type { Connection } from '../pusher/src/connection.js';
import { stack, uniqueId } from './support/env.js';
import { eventually } from './support/eventually.js';

const HOUR = 3_600_000;
const node = (id: string, boot: string) => ({ id, boot, url: `ws://${id}`, connections: 0, draining: false });

describe('routes live as long as the boot of the node that wrote them', () => {
  let redis: Redis;
  before(() => {
    redis = new Redis(stack.redisUrl, { keyPrefix: `${uniqueId('test-routes')}:` });
  });
  after(async () => {
    const keys = await redis.keys(`${redis.options.keyPrefix}*`);
    if (keys.length > 0) await redis.del(...keys.map((k) => k.slice(redis.options.keyPrefix!.length)));
    await redis.quit();
  });

  test('a route of the running boot is found without refresh; a restart under the same node id drops and deletes it', { timeout: 10_000 }, async () => {
    await heartbeatNode(redis, node('n1', 'bootA'), 15_000);
    await putRoutes(redis, { id: 'n1', boot: 'bootA' }, [{ app: 'a', user: 'u1', device: 'phone', connId: 'c1' }], HOUR);
    const [found] = await lookupRoutes(redis, [{ app: 'a', user: 'u1' }]);
    assert.deepEqual(
      found?.map((r) => [r.device, r.connId, r.nodeId]),
      [['phone', 'c1', 'n1']],
    );
    assert.ok(found![0]!.expiresAt > Date.now() + HOUR - 60_000, 'the field carries the long route TTL');

    await heartbeatNode(redis, node('n1', 'bootB'), 15_000); // same node id, new process
    const [afterRestart] = await lookupRoutes(redis, [{ app: 'a', user: 'u1' }]);
    assert.deepEqual(afterRestart, []);
    // Deleted on the way (fire and forget): wait for it, bounded.
    await eventually(() => redis.hlen(routeKey('a', 'u1')), { what: "u1's stale routes deleted", until: (n) => n === 0, timeoutMs: 2000, intervalMs: 20 });
  });

  test('routes of a node whose heartbeat lapsed or that left are not returned; other nodes are unaffected', { timeout: 10_000 }, async () => {
    await heartbeatNode(redis, node('n2', 'b2'), 15_000);
    await heartbeatNode(redis, node('n3', 'b3'), 15_000);
    await putRoutes(redis, { id: 'n2', boot: 'b2' }, [{ app: 'a', user: 'u2', device: 'd2', connId: 'x' }], HOUR);
    await putRoutes(redis, { id: 'n3', boot: 'b3' }, [{ app: 'a', user: 'u2', device: 'd3', connId: 'y' }], HOUR);
    assert.equal((await lookupRoutes(redis, [{ app: 'a', user: 'u2' }]))[0]!.length, 2);

    await heartbeatNode(redis, node('n2', 'b2'), 1); // its last heartbeat, expiring at once
    await new Promise((r) => setTimeout(r, 5));
    assert.deepEqual(
      (await lookupRoutes(redis, [{ app: 'a', user: 'u2' }]))[0]!.map((r) => r.nodeId),
      ['n3'],
    );

    await removeNode(redis, 'n3');
    assert.deepEqual(await lookupRoutes(redis, [{ app: 'a', user: 'u2' }]), [[]]);
  });

  test(
    'a closed connection removes exactly its own route; a value from an older pusher (no boot id) counts until its expiry',
    { timeout: 10_000 },
    async () => {
      await heartbeatNode(redis, node('n4', 'b4'), 15_000);
      const owner = { id: 'n4', boot: 'b4' };
      await putRoutes(
        redis,
        owner,
        [
          { app: 'a', user: 'u4', device: 'd', connId: 'old' },
          { app: 'a', user: 'u4', device: 'd', connId: 'new' },
        ],
        HOUR,
      );
      await removeRoutes(redis, [{ app: 'a', user: 'u4', device: 'd', connId: 'old' }]);
      assert.deepEqual(
        (await lookupRoutes(redis, [{ app: 'a', user: 'u4' }]))[0]!.map((r) => r.connId),
        ['new'],
      );

      await redis.hset(routeKey('a', 'u5'), 'd|legacy', `n4|${Date.now() + 60_000}`, 'd|lapsed', `n4|${Date.now() - 1}`);
      assert.deepEqual(
        (await lookupRoutes(redis, [{ app: 'a', user: 'u5' }]))[0]!.map((r) => r.connId),
        ['legacy'],
      );
    },
  );

  test(
    'connections opened in one turn get route, last node and presence epoch in one batch; one closed before it is skipped',
    { timeout: 10_000 },
    async () => {
      await heartbeatNode(redis, node('n6', 'b6'), 15_000);
      const batches: string[][] = [];
      const writes = createConnectWrites({
        redis,
        owner: { id: 'n6', boot: 'b6' },
        routeTtlMs: HOUR,
        onWritten: (conns) => batches.push(conns.map((c) => c.id)),
      });
      const conn = (id: string, user: string) => ({ id, app: 'a', user, device: 'd', closed: false, presenceEpoch: 0 }) as unknown as Connection;
      const [c1, c2, c3] = [conn('k1', 'u6'), conn('k2', 'u7'), conn('k3', 'u8')];
      const pending = [writes.add(c1!, false), writes.add(c2!, false), writes.add(c3!, true)];
      (c2 as { closed: boolean }).closed = true; // closed before the batch went out
      const failed = await Promise.all(pending);
      assert.equal(failed[0], failed[2], 'one batch');
      assert.equal(failed[0]!.size, 0);
      assert.deepEqual(batches, [['k1', 'k3']]);
      assert.deepEqual([c1!.presenceEpoch, c2!.presenceEpoch, c3!.presenceEpoch], [1, 0, 1]);
      const found = await lookupRoutes(redis, [
        { app: 'a', user: 'u6' },
        { app: 'a', user: 'u7' },
        { app: 'a', user: 'u8' },
      ]);
      assert.deepEqual(
        found.map((rs) => rs.map((r) => r.connId)),
        [['k1'], [], ['k3']],
      );
      assert.equal(await redis.get(lastNodeKey('a', 'u6')), 'n6');
      assert.equal(await redis.get(lastNodeKey('a', 'u7')), null);

      // The device's next connection gets the next epoch.
      const again = conn('k4', 'u6');
      await writes.add(again, false);
      assert.equal(again.presenceEpoch, 2);
      assert.equal(await redis.get(epochKey(again)), '2');
    },
  );
});
