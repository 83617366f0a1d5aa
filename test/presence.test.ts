import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { topicNames } from '../common/src/topics.js';
import { decodeRecord } from '../schemas/registry.js';
import type { Presence, Upstream } from '../schemas/types.js';
import { connectClient, startStack, wsOf, type TestStack } from './support/stack.js';
import { eventually } from './support/services.js';
import { topicReader } from './support/topicReader.js';

describe('presence and upstream on Kafka', () => {
  let s: TestStack;
  const reader = topicReader('presence-test');
  const follow = reader.follow;
  before(async () => {
    s = await startStack({ env: { PUSHER_MAX_FRAME_BYTES: '4096' } });
  });
  after(async () => {
    await reader.close();
    await s?.stop();
  });


  test('connect, reconnect and disconnect publish presence in order with epochs; the API reflects it', { timeout: 60_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const events = await follow<Presence>(topics.presence, (v, h) => decodeRecord('Presence', v, h));
    const presence = async () =>
      (await (await fetch(`${s.collector.url}/v1/users/pat/presence`, { headers: { authorization: `Bearer ${s.apiKey}` } })).json()) as any;
    const { token } = await s.token('pat', 'phone');
    const first = await connectClient(wsOf(s.pushers[0]!.url), token);
    await eventually(async () => (await presence()).online === true, { what: 'presence API online' });
    assert.deepEqual((await presence()).devices.map((d: any) => d.deviceId), ['phone']);
    await first.close();
    const second = await connectClient(wsOf(s.pushers[0]!.url), token);
    await second.close();
    await eventually(() => events.filter((e) => e.user === 'pat').length >= 4, { what: 'four presence events' });
    const mine = events.filter((e) => e.user === 'pat').map((e) => `${e.state}@${e.epoch}`);
    // Each connection's ONLINE comes before its OFFLINE. The old connection's OFFLINE may land after
    // the new one's ONLINE (the server can notice a close late), which is why consumers apply an
    // event only if its epoch is not older than the last one applied for the device.
    assert.deepEqual([...mine].sort(), ['OFFLINE@1', 'OFFLINE@2', 'ONLINE@1', 'ONLINE@2']);
    assert.ok(mine.indexOf('ONLINE@1') < mine.indexOf('OFFLINE@1'), mine.join(' '));
    assert.ok(mine.indexOf('ONLINE@2') < mine.indexOf('OFFLINE@2'), mine.join(' '));
    assert.ok(mine.indexOf('ONLINE@1') < mine.indexOf('ONLINE@2'), mine.join(' '));
    let applied = { state: '', epoch: 0 };
    for (const e of events.filter((x) => x.user === 'pat')) if (e.epoch >= applied.epoch) applied = { state: e.state, epoch: e.epoch };
    assert.deepEqual(applied, { state: 'OFFLINE', epoch: 2 });
    await eventually(async () => (await presence()).online === false, { what: 'presence API offline' });
  });

  test('upstream frames reach push.upstream tagged with user and device; an oversized frame closes with 1009', { timeout: 60_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const records = await follow<Upstream>(topics.upstream, (v, h) => decodeRecord('Upstream', v, h));
    const c = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('quinn', 'tablet')).token);
    c.ws.send(JSON.stringify({ type: 'upstream', payload: { action: 'typing', chat: 'c-1' } }));
    await eventually(() => records.length >= 1, { what: 'upstream record' });
    assert.equal(records[0]!.user, 'quinn');
    assert.equal(records[0]!.device, 'tablet');
    assert.equal(records[0]!.app, s.app);
    assert.deepEqual(JSON.parse(records[0]!.payload), { action: 'typing', chat: 'c-1' });
    c.ws.send(JSON.stringify({ type: 'upstream', payload: 'x'.repeat(5000) }));
    assert.equal((await c.closed).code, 1009);
  });
});
