import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { adminCall, connectClient, startStack, wsOf, type TestClient, type TestStack, receiveAndAck } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { startSending } from './support/sender.js';

describe('draining a pusher', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack({ pushers: 2 });
  });
  after(async () => {
    await s?.stop();
  });

  test('clients are told to reconnect elsewhere, end on the other node, and lose nothing', { timeout: 60_000 }, async () => {
    const [leaving, staying] = s.pushers as [(typeof s.pushers)[0], (typeof s.pushers)[0]];
    const users = Array.from({ length: 10 }, (_, i) => `drain${i}`);
    const tokens = new Map(await Promise.all(users.map(async (u) => [u, (await s.token(u, 'd')).token] as const)));
    const received = new Map<string, Set<string>>(users.map((u) => [u, new Set()]));
    const moved = new Map<string, TestClient>();
    // Behave like the SDK: on a reconnect frame, connect to the first node offered.
    const follow = (u: string, c: TestClient) =>
      receiveAndAck(c, received.get(u)!, (f) => {
        if (f.type !== 'reconnect') return;
        assert.deepEqual(f.nodes, [wsOf(staying.url)]);
        c.ws.close();
        void connectClient(f.nodes[0], tokens.get(u)!).then((next) => {
          moved.set(u, next);
          follow(u, next);
        });
      });
    for (const u of users) follow(u, await connectClient(wsOf(leaving.url), tokens.get(u)!));

    const sender = startSending(s, users, 3000);
    await eventually(() => [...received.values()].some((ids) => ids.size > 0), { what: 'deliveries before the drain' });
    // The drain endpoint is on the node's admin listener (loopback), found in the status API; not on the public port.
    const publicDrain = await fetch(`${leaving.url}/v1/admin/drain`, { method: 'POST', headers: { authorization: 'Bearer operator-key' } });
    assert.equal(publicDrain.status, 404);
    const { body: status } = await adminCall(s, '/v1/admin/status');
    const leavingAdmin = status.nodes.find((n: { url: string }) => n.url === wsOf(leaving.url)).adminUrl as string;
    assert.notEqual(leavingAdmin, leaving.url);
    const res = await fetch(`${leavingAdmin}/v1/admin/drain`, { method: 'POST', headers: { authorization: 'Bearer operator-key' } });
    assert.equal(res.status, 202);
    assert.equal(await leaving.stop('SIGTERM', 20_000), 0, 'the drained node exits cleanly');
    s.pushers.splice(s.pushers.indexOf(leaving), 1);
    await eventually(() => moved.size === users.length, { what: 'every client moved' });
    const sentBefore = sender.count();
    await eventually(() => sender.count() >= sentBefore + 20, { what: 'messages after the move' });
    await sender.stop();
    await sender.assertReceived(received, { what: 'every message received', timeoutMs: 30_000 });
    const { nodes } = await s.token('someone', 'd');
    assert.deepEqual(nodes, [wsOf(staying.url)], 'the drained node is no longer handed out');
    await Promise.all([...moved.values()].map((c) => c.close()));
  });
});
