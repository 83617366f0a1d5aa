import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { StoredMessage } from '../store/messages.js';
import { createMessagesStore } from '../store/messages.js';
import { newId } from '../protocol/ids.js';
import { topicNames } from '../protocol/topics.js';
import { decodeRecord } from '../schemas/registry.js';
import type { DeadLetter } from '../schemas/types.js';
import { connectClient, startStack, wsOf, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { topicReader } from './support/topicReader.js';

/** Issue 12 #6: a big multicast can neither balloon the collector nor poison the outbox. */
describe('fan-out bounds and the outbox', () => {
  let s: TestStack;
  const reader = topicReader('hardening-fanout');
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await reader.close();
    await s?.stop();
  });

  // 16,002 bytes of JSON: under the app's 16 KiB payload limit.
  const payload16k = 'x'.repeat(16_000);
  const users = (prefix: string, n: number) => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

  const rss = async () => {
    const text = await (await fetch(`${s.collector.url}/metrics`)).text();
    const m = /^push_process_resident_memory_bytes(?:\{[^}]*\})? ([0-9.e+]+)$/m.exec(text);
    assert.ok(m, 'the collector reports its resident memory');
    return Number(m[1]);
  };

  test(
    '10,000 users x 16 KB is refused with 413 FANOUT_TOO_LARGE naming the limit, nothing stored; eight at once leave memory flat',
    { timeout: 90_000 },
    async () => {
      const baseline = await rss();
      const body = (persistent: boolean) => ({ to: { users: users('bomb', 10_000) }, payload: payload16k, persistent });
      for (let round = 0; round < 3; round++) {
        const answers = await Promise.all(Array.from({ length: 8 }, (_, i) => s.send(body(i % 2 === 0))));
        for (const r of answers) {
          assert.equal(r.status, 413, JSON.stringify(r.body).slice(0, 300));
          assert.equal(r.body.error.code, 'FANOUT_TOO_LARGE');
          assert.match(r.body.error.message, /at most 16777216/, 'the message names the limit');
          assert.equal(r.body.error.details.field, 'to.users');
        }
      }
      const grown = (await rss()) - baseline;
      // The old collector built ~160 MB of records per request before any bound applied.
      assert.ok(grown < 100 * 1024 * 1024, `collector RSS grew by ${Math.round(grown / 1048576)} MiB`);
      const stored = await s.mongo.db(s.env.MONGO_DB).collection('messages').countDocuments({ app: s.app });
      assert.equal(stored, 0, 'a refused message is not kept (the old collector answered "stored" and poisoned the outbox)');
    },
  );

  test('concurrent multicasts at the limit: each is accepted or refused with 503 + Retry-After, and memory stays bounded', { timeout: 90_000 }, async () => {
    const baseline = await rss();
    // 900 x ~16.2 KB: just under the 16 MiB fan-out cap; eight of them exceed the 64 MiB publish queue.
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => s.send({ to: { users: users(`big${i}-`, 900) }, payload: payload16k, persistent: false })),
    );
    for (const r of answers) {
      assert.ok(r.status === 202 || r.status === 503, `${r.status} ${JSON.stringify(r.body)}`);
      if (r.status === 503) assert.ok(r.headers.get('retry-after'), 'a refusal says when to retry');
    }
    assert.ok(
      answers.some((r) => r.status === 202),
      'the queue takes what fits',
    );
    const grown = (await rss()) - baseline;
    assert.ok(grown < 400 * 1024 * 1024, `collector RSS grew by ${Math.round(grown / 1048576)} MiB`);
  });

  test('a large but allowed multicast (800 users x 16 KB, ~13 MB of records) is published in pieces and delivered', { timeout: 90_000 }, async () => {
    const to = users('wide', 800);
    const online = ['wide0', 'wide399', 'wide799'];
    const clients = await Promise.all(online.map(async (u) => connectClient(wsOf(s.pushers[0]!.url), (await s.token(u, 'd')).token)));
    const r = await s.send({ to: { users: to }, payload: { big: payload16k }, persistent: false });
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.equal(r.body.status, 'accepted');
    await Promise.all(clients.map((c) => c.waitFor(1, 30_000)));
    for (const c of clients) {
      assert.equal(c.messages[0]!.id, r.body.id);
      assert.equal(c.messages[0]!.payload.big.length, 16_000);
    }
    await Promise.all(clients.map((c) => c.close()));
  });

  test('an outbox entry that can never be published is dead-lettered with its reason; a later stored message still goes out', { timeout: 90_000 }, async () => {
    const dlq = await reader.follow<DeadLetter>(topicNames(s.env.KAFKA_TOPIC_PREFIX).dlq, (v, h) => decodeRecord('DeadLetter', v, h));
    const client = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('olive', 'phone')).token);
    // Stored the way the collector stored it before the fan-out bound: message plus outbox entry,
    // unpublished (Kafka "failed"), old enough for the sweeper.
    const store = createMessagesStore(s.mongo.db(s.env.MONGO_DB));
    const at = new Date(Date.now() - 60_000);
    const message = (id: string, to: string[], body: string): StoredMessage => ({
      _id: id,
      app: s.app,
      target: 'USER',
      users: to,
      payload: JSON.stringify(body),
      persistent: true,
      createdAt: at,
      expiresAt: new Date(Date.now() + 3_600_000),
      traceId: id,
    });
    const poison = message(newId(), users('poison', 10_000), payload16k);
    const later = message(newId(), ['olive'], 'after the poison');
    assert.ok(poison._id < later._id, 'the poisoned entry is first in the outbox');
    await store.storeMessages([poison]);
    await store.storeMessages([later]);

    await client.waitFor(1, 30_000);
    assert.equal(client.messages[0]!.id, later._id);
    const letter = await eventually(() => dlq.find((d) => d.offset === poison._id), { timeoutMs: 15_000, what: 'dead letter of the poisoned entry' });
    assert.equal(letter.sourceTopic, 'outbox');
    assert.equal(letter.errorCode, 'FANOUT_TOO_LARGE');
    assert.match(letter.reason, /10000 recipients/);
    assert.equal(JSON.parse(letter.value!.toString()).recipients, 10_000);
    await eventually(async () => (await s.mongo.db(s.env.MONGO_DB).collection('outbox_batches').countDocuments({})) === 0, { what: 'outbox empty' });
    await client.close();
  });
});
