import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAppStore } from '../store/apps.js';
import { newSigningSecret, SIGNATURE_HEADER } from '../protocol/eventSignature.js';
import { topicNames } from '../protocol/topics.js';
import { decodeRecord } from '../schemas/registry.js';
import type { IngestRecord } from '../schemas/types.js';
import { createKafkaPublisher } from '../publisher/src/index.js';
import { connectClient, wsOf } from './support/stack.js';
import { useEventsStack } from './support/eventsStack.js';
import { startService, type RunningService } from './support/services.js';
import { eventually } from './support/eventually.js';
import { topicReader } from './support/topicReader.js';
import { stack as infra, uniqueId } from './support/env.js';
import { businessEvent, eventRecord, eventsLag } from './support/eventRecords.js';

/**
 * Issue 12 #9: whoever may produce to push.events could act as any app. A record
 * now proves its app with a push-signature header; an app with a signing secret
 * refuses unsigned records, EVENTS_REQUIRE_SIGNATURE=true refuses them for every
 * app, a bad signature is always refused; and the app's rate limits hold on
 * push.events too (the consumer waits; nothing is dropped).
 */
describe('signed app identity and rate limits on push.events (issue 12 #9)', () => {
  const secret = newSigningSecret();
  const bed = useEventsStack('signature-test', { signingSecret: secret });

  const letterFor = (partition: number, offset: string) =>
    eventually(() => bed.letters.find((l) => l.sourceTopic === bed.topics.events && l.partition === partition && l.offset === offset), {
      timeoutMs: 20_000,
      what: `dead letter of ${partition}:${offset}`,
    });

  test(
    'an app with a signing secret: unsigned and forged records go to push.dlq; the publisher signs and its record is delivered',
    { timeout: 90_000 },
    async () => {
      const client = await connectClient(wsOf(bed.s.pushers[0]!.url), (await bed.s.token('sam', 'phone')).token);
      const publisher = createKafkaPublisher({ brokers: infra.kafkaBrokers, topicPrefix: bed.s.env.KAFKA_TOPIC_PREFIX, signingSecret: secret });
      try {
        const ev = (n: number) => businessEvent(bed.s.app, ['sam'], { n });
        const key = `${bed.s.app}|sam`;
        const forgedHeader = eventRecord(ev(2), key);
        forgedHeader.headers[SIGNATURE_HEADER] = `v1=${'0'.repeat(64)}`;
        const signedForOtherKey = eventRecord(ev(4), `${bed.s.app}|other`, secret);
        const [meta] = await bed.kafka.producer.send({
          topic: bed.topics.events,
          messages: [
            eventRecord(ev(1), key), // unsigned: anyone could have written it
            forgedHeader,
            eventRecord(ev(3), key, newSigningSecret()), // signed with a secret that is not the app's
            { ...signedForOtherKey, key }, // a valid signature moved to another key
          ],
        });
        const base = BigInt(meta!.baseOffset!);
        const codes = await Promise.all([0n, 1n, 2n, 3n].map(async (i) => (await letterFor(meta!.partition, String(base + i))).errorCode));
        assert.deepEqual(codes, ['SIGNATURE_MISSING', 'SIGNATURE_INVALID', 'SIGNATURE_INVALID', 'SIGNATURE_INVALID']);

        await publisher.send({ app: bed.s.app, to: { users: ['sam'] }, payload: { n: 5, signed: true } });
        await client.waitFor(1, 30_000);
        assert.deepEqual(
          client.messages.map((m) => m.payload),
          [{ n: 5, signed: true }],
          'only the signed record is delivered',
        );
        await eventually(async () => (await eventsLag(bed.kafka.admin, bed.topics)) === 0, { timeoutMs: 20_000, what: 'push.events lag 0' });
      } finally {
        await publisher.close();
        await client.close();
      }
    },
  );

  test('an app without a secret (compatible mode): unsigned records pass, a bad signature still goes to push.dlq', { timeout: 60_000 }, async () => {
    const open = `${bed.s.app}-open`;
    await createAppStore({ db: bed.s.mongo.db(bed.s.env.MONGO_DB) }).upsert({ id: open, apiKeys: [`${bed.s.apiKey}-open`] });
    const bad = eventRecord(businessEvent(open, ['olga'], { n: 1 }), `${open}|olga`);
    bad.headers[SIGNATURE_HEADER] = 'v1=not-hex';
    const [meta] = await bed.kafka.producer.send({
      topic: bed.topics.events,
      messages: [bad, eventRecord(businessEvent(open, ['olga'], { n: 2 }, { persistent: true }), `${open}|olga`)],
    });
    assert.equal((await letterFor(meta!.partition, meta!.baseOffset!)).errorCode, 'SIGNATURE_INVALID');
    // The unsigned one was accepted: it is stored for olga.
    const stored = await eventually(() => bed.s.mongo.db(bed.s.env.MONGO_DB).collection('messages').findOne({ app: open }), {
      timeoutMs: 20_000,
      what: 'the stored message',
    });
    assert.equal(stored.payload, '{"n":2}');
    assert.ok(
      !bed.letters.some((l) => l.sourceTopic === bed.topics.events && l.partition === meta!.partition && l.offset === String(BigInt(meta!.baseOffset!) + 1n)),
    );
  });

  test(
    'EVENTS_REQUIRE_SIGNATURE=true: an unsigned record of an app without a secret goes to push.dlq; a signed one is accepted',
    { timeout: 90_000 },
    async () => {
      // A second collector of its own (topics, group) on the same store, in require mode.
      const prefix = `${uniqueId('req').replace(/[^A-Za-z0-9]/g, '')}.`;
      const strictTopics = topicNames(prefix);
      let collector: RunningService | undefined;
      const strictReader = topicReader('signature-strict');
      try {
        collector = await startService('collector', { ...bed.s.env, KAFKA_TOPIC_PREFIX: prefix, EVENTS_REQUIRE_SIGNATURE: 'true' });
        const strictLetters = await strictReader.follow(strictTopics.dlq, (v, h) => decodeRecord('DeadLetter', v, h));
        const ingest = await strictReader.follow(strictTopics.ingest, (v, h) => decodeRecord('IngestRecord', v, h) as IngestRecord);
        const open = `${bed.s.app}-open2`;
        const openSecret = newSigningSecret();
        await createAppStore({ db: bed.s.mongo.db(bed.s.env.MONGO_DB) }).upsert({ id: open, apiKeys: [`${bed.s.apiKey}-open2`] });
        const [meta] = await bed.kafka.producer.send({
          topic: strictTopics.events,
          messages: [eventRecord(businessEvent(open, ['uma'], { n: 1 }), `${open}|uma`)],
        });
        const letter = await eventually(() => strictLetters.find((l) => l.partition === meta!.partition && l.offset === meta!.baseOffset), {
          timeoutMs: 30_000,
          what: 'the dead letter',
        });
        assert.equal(letter.errorCode, 'SIGNATURE_MISSING');
        assert.match(letter.reason, /push-signature/);

        // The app gets a secret (the collector caches apps for 5 s); its signed record goes through.
        await createAppStore({ db: bed.s.mongo.db(bed.s.env.MONGO_DB) }).upsert({
          id: open,
          apiKeys: [`${bed.s.apiKey}-open2`],
          eventSigningSecrets: [openSecret],
        });
        const publisher = createKafkaPublisher({ brokers: infra.kafkaBrokers, topicPrefix: prefix, signingSecret: openSecret });
        try {
          const deadline = Date.now() + 30_000;
          while (!ingest.some((r) => r.app === open && r.payload === '{"n":2}')) {
            assert.ok(Date.now() < deadline, 'the signed record never reached push.ingest');
            // Until the collector's cached copy of the app (no secret yet) expires, the signed record is refused as SIGNATURE_INVALID.
            const before = strictLetters.length;
            await publisher.send({ app: open, to: { users: ['uma'] }, payload: { n: 2 } });
            await eventually(() => ingest.some((r) => r.app === open) || strictLetters.length > before || undefined, { timeoutMs: 10_000 });
            if (strictLetters.length > before) {
              assert.equal(strictLetters.at(-1)!.errorCode, 'SIGNATURE_INVALID');
              await new Promise((r) => setTimeout(r, 1000));
            }
          }
        } finally {
          await publisher.close();
        }
      } finally {
        await strictReader.close();
        await collector?.stop('SIGTERM', 10_000);
      }
    },
  );

  test('the app rate limit holds on push.events: records over it wait (in order, none dropped)', { timeout: 90_000 }, async () => {
    const limited = `${bed.s.app}-rl`;
    const limitedKey = `${bed.s.apiKey}-rl`;
    await createAppStore({ db: bed.s.mongo.db(bed.s.env.MONGO_DB) }).upsert({ id: limited, apiKeys: [limitedKey], limits: { requestsPerSecond: 4 } });
    const tokenRes = await fetch(`${bed.s.auth.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${limitedKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'rita', deviceId: 'phone' }),
    });
    assert.equal(tokenRes.status, 200);
    const client = await connectClient(wsOf(bed.s.pushers[0]!.url), ((await tokenRes.json()) as { token: string }).token);
    try {
      const n = 16;
      const started = Date.now();
      await bed.kafka.producer.send({
        topic: bed.topics.events,
        messages: Array.from({ length: n }, (_, i) => eventRecord(businessEvent(limited, ['rita'], { i }, { persistent: false }), `${limited}|rita`)),
      });
      await client.waitFor(n, 60_000);
      const elapsed = Date.now() - started;
      assert.deepEqual(
        client.messages.map((m) => m.payload.i),
        Array.from({ length: n }, (_, i) => i),
      );
      // A bucket of 4 with 4/s refill: 16 records take at least (16 - 4) / 4 = 3 bed.s.
      assert.ok(elapsed >= 2500, `16 records at 4/s were delivered in ${elapsed} ms`);
      assert.ok(!bed.letters.some((l) => l.sourceTopic === bed.topics.events && l.errorCode === 'RATE_LIMITED'));
      const metrics = await (await fetch(`${bed.s.collector.url}/metrics`)).text();
      assert.match(metrics, /^push_events_throttled_total(\{[^}]*\})? [1-9]/m);
    } finally {
      await client.close();
    }
  });
});
