import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { gzipSync } from 'node:zlib';
import { connectClient, wsOf } from './support/stack.js';
import { useEventsStack } from './support/eventsStack.js';
import { eventually } from './support/eventually.js';
import { businessEvent, eventRecord, eventsLag } from './support/eventRecords.js';

/** A payload of `n` nested arrays, as JSON text. */
const nested = (n: number) => '['.repeat(n) + ']'.repeat(n);

describe('a poison push.events record cannot stall its partition (issue 12 #4)', () => {
  const bed = useEventsStack('poison-test');

  test(
    'a payload of 100,000 nested brackets goes to push.dlq as PAYLOAD_TOO_DEEP, the next record is delivered, the lag returns to zero',
    { timeout: 90_000 },
    async () => {
      const client = await connectClient(wsOf(bed.s.pushers[0]!.url), (await bed.s.token('pia', 'phone')).token);
      try {
        // Same key, same partition: the good record queues behind the poison one.
        const deep = eventRecord(businessEvent(bed.s.app, ['pia'], null, { payload: nested(100_000) }), `${bed.s.app}|pia`);
        const good = eventRecord(businessEvent(bed.s.app, ['pia'], { after: 'poison' }), `${bed.s.app}|pia`);
        await bed.kafka.producer.send({ topic: bed.topics.events, messages: [deep, good] });
        await client.waitFor(1, 30_000);
        assert.deepEqual(
          client.messages.map((m) => m.payload),
          [{ after: 'poison' }],
        );
        const letter = await eventually(() => bed.letters.find((l) => l.sourceTopic === bed.topics.events), { timeoutMs: 20_000, what: 'the dead letter' });
        assert.equal(letter.errorCode, 'PAYLOAD_TOO_DEEP');
        assert.match(letter.reason, /deeper than 32 levels/);
        assert.equal(letter.consumer, bed.topics.groups.collectorEvents);
        assert.equal(Buffer.compare(Buffer.from(letter.value!), deep.value!), 0, 'the original value is kept for a replay');
        await eventually(async () => (await eventsLag(bed.kafka.admin, bed.topics)) === 0, { timeoutMs: 20_000, what: 'push.events lag 0' });
        assert.equal(bed.letters.filter((l) => l.sourceTopic === bed.topics.events).length, 1);
      } finally {
        await client.close();
      }
    },
  );

  test('over HTTP the same body is a 400 PAYLOAD_TOO_DEEP, plain and gzip-compressed; 32 levels pass, 33 do not', { timeout: 60_000 }, async () => {
    const body = (depth: number) => `{"to":{"users":["pia"]},"payload":${nested(depth)},"persistent":false}`;
    const post = (text: string, headers: Record<string, string> = {}, raw: Buffer | string = text) =>
      fetch(`${bed.s.collector.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${bed.s.apiKey}`, 'content-type': 'application/json', ...headers },
        body: raw,
      }).then(async (r) => ({ status: r.status, body: (await r.json()) as any }));

    const fast = await post(body(100_000));
    assert.equal(fast.status, 400, JSON.stringify(fast.body));
    assert.equal(fast.body.error.code, 'PAYLOAD_TOO_DEEP');
    assert.deepEqual(fast.body.error.details, { field: 'payload', maxDepth: 32 });

    // A compressed body: inflated by the same handler.
    const slow = await post('', { 'content-encoding': 'gzip' }, gzipSync(body(100_000)));
    assert.equal(slow.status, 400, JSON.stringify(slow.body));
    assert.equal(slow.body.error.code, 'PAYLOAD_TOO_DEEP');

    assert.equal((await post(body(32))).status, 202);
    assert.equal((await post(body(33))).body.error?.code, 'PAYLOAD_TOO_DEEP');
    assert.equal((await post(`{"to":{"users":["pia"]},"payload":${'{"a":'.repeat(33)}1${'}'.repeat(33)}}`)).body.error?.code, 'PAYLOAD_TOO_DEEP');
    // Deep values in the other fields are refused by their type checks, never serialised.
    for (const text of [
      `{"to":${nested(100_000)},"payload":1}`,
      `{"to":{"users":${nested(100_000)}},"payload":1}`,
      `{"to":{"users":["pia"]},"payload":1,"ttlSeconds":${nested(100_000)}}`,
      `{"to":{"users":["pia"]},"payload":1,"idempotencyKey":${nested(100_000)}}`,
      `{"deep":${nested(100_000)},"to":{"users":["pia"]},"payload":1}`,
      nested(100_000),
    ]) {
      const r = await post(text);
      assert.equal(r.status, 400, `${text.slice(0, 40)}: ${JSON.stringify(r.body).slice(0, 200)}`);
      assert.equal(r.body.error.code, 'INVALID_REQUEST');
    }
    // The collector is still there for everyone else.
    assert.equal((await bed.s.send({ to: { users: ['pia'] }, payload: { ok: true }, persistent: false })).status, 202);
  });
});
