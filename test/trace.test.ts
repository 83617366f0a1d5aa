import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertOnlyMarker, connectClient, startStack, wsOf, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { runCli } from './support/cli.js';

describe('push trace', () => {
  let s: TestStack;
  let cliEnv: Record<string, string>;
  before(async () => {
    s = await startStack({ pushers: 1 });
    cliEnv = { PUSH_ADMIN_URL: s.admin.url, PUSH_COLLECTOR_URL: s.collector.url, PUSH_OPERATOR_KEY: 'operator-key', PUSH_APP_KEY: s.apiKey };
  });
  after(async () => {
    await s?.stop();
  });
  const trace = async (id: string) => {
    const r = await runCli(['trace', id, '--json'], cliEnv);
    assert.equal(r.code, 0, r.stderr);
    return r.json;
  };
  const hops = (t: any) => t.hops.map((h: any) => h.hop);

  test('a delivered message: stored, ingested, dispatched to the node, written to the device, acked by it', { timeout: 60_000 }, async () => {
    const node = s.pushers[0]!;
    const c = await connectClient(wsOf(node.url), (await s.token('alice', 'laptop')).token);
    const sent = await s.send({ to: { users: ['alice'] }, payload: { text: 'hi' } }, {});
    assert.equal(sent.status, 202);
    await c.waitFor(1);
    c.ack([sent.body.id]);
    const t = await eventually(
      async () => {
        const r = await trace(sent.body.id);
        return r.state === 'acked' ? r : undefined;
      },
      { what: 'trace says acked', timeoutMs: 15_000, intervalMs: 300 },
    );
    const nodeId = `${s.env.KAFKA_TOPIC_PREFIX.replace(/\.$/, '')}-p1`;
    assert.equal(t.messageId, sent.body.id);
    assert.equal(t.traceId, sent.body.id, 'the trace id defaults to the message id');
    assert.deepEqual(
      ['stored', 'ingested', 'dispatched', 'written', 'acked'].filter((h) => hops(t).includes(h)),
      ['stored', 'ingested', 'dispatched', 'written', 'acked'],
    );
    const dispatched = t.hops.find((h: any) => h.hop === 'dispatched');
    assert.equal(dispatched.user, 'alice');
    assert.deepEqual(dispatched.nodes, [nodeId]);
    const written = t.hops.find((h: any) => h.hop === 'written');
    assert.deepEqual([written.node, written.user, written.device], [nodeId, 'alice', 'laptop']);
    const acked = t.hops.find((h: any) => h.hop === 'acked');
    assert.deepEqual([acked.user, acked.device], ['alice', 'laptop']);
    assert.deepEqual(t.recipients[0].devices, [{ device: 'laptop', writtenBy: [nodeId], acked: true, parked: false, tries: 0 }]);
    await c.close();
  });

  test('an offline message waits in the inbox; a submitted traceparent becomes its trace id', { timeout: 60_000 }, async () => {
    const res = await fetch(`${s.collector.url}/v1/messages`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${s.apiKey}`,
        'content-type': 'application/json',
        traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
      },
      body: JSON.stringify({ to: { users: ['bob'] }, payload: 'later' }),
    });
    const { id } = (await res.json()) as { id: string };
    const t = await eventually(
      async () => {
        const r = await trace(id);
        return r.state === 'waiting-offline' ? r : undefined;
      },
      { what: 'trace says waiting', timeoutMs: 15_000, intervalMs: 300 },
    );
    assert.equal(t.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
    assert.deepEqual(hops(t), ['stored', 'ingested', 'dispatched']);
    assert.equal(t.hops[2].detail, 'no live connection: waits in the inbox for the next connect');
    assert.deepEqual(t.recipients, [{ user: 'bob', outcome: 'offline', nodes: [], inInbox: true, devices: [] }]);
    // The human form names the state and each hop.
    const human = await runCli(['trace', id], cliEnv);
    assert.equal(human.code, 0);
    assert.match(human.stdout, /state: waiting-offline/);
    assert.match(human.stdout, /dispatched\s+bob\s+no live connection/);
  });

  test('an expired message: TTL passed while undelivered', { timeout: 60_000 }, async () => {
    const sent = await s.send({ to: { users: ['carol'] }, payload: 'soon gone', ttlSeconds: 1 });
    assert.equal(sent.status, 202);
    const t = await eventually(
      async () => {
        const r = await trace(sent.body.id);
        return r.state === 'expired' ? r : undefined;
      },
      { what: 'trace says expired', timeoutMs: 15_000, intervalMs: 300 },
    );
    assert.equal(t.expired, true);
    assert.deepEqual(hops(t), ['stored', 'ingested', 'dispatched', 'expired']);
    assert.match(t.hops.at(-1).detail, /TTL passed while undelivered to carol/);
    // A device connecting now gets nothing, and the trace does not change.
    const c = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('carol', 'phone')).token);
    await assertOnlyMarker(s, c, 'carol');
    assert.equal((await trace(sent.body.id)).state, 'expired');
    await c.close();
  });

  test('unknown and malformed ids are clear errors with exit code 1', async () => {
    const unknown = await runCli(['trace', '01ARZ3NDEKTSV4RRFFQ69G5FAV'], cliEnv);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /404 NOT_FOUND: no trace of message 01ARZ3NDEKTSV4RRFFQ69G5FAV/);
    const bad = await runCli(['trace', 'not-an-id'], cliEnv);
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /404 NOT_FOUND: no message not-an-id: message ids are 26 characters/);
    const missing = await runCli(['trace'], cliEnv);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /missing argument <messageId>/);
  });
});
