import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MongoClient } from 'mongodb';
import { createAppStore } from '../store/apps.js';
import { topicNames } from '../protocol/topics.js';
import { decodeRecord } from '../schemas/registry.js';
import type { DeadLetter, IngestRecord } from '../schemas/types.js';
import { startService, type RunningService } from './support/services.js';
import { eventually } from './support/eventually.js';
import { topicReader } from './support/topicReader.js';
import { stack as infra, uniqueId } from './support/env.js';
import { businessEvent, eventRecord, kafkaTools } from './support/eventRecords.js';
import { tcpProxy } from './support/tcpProxy.js';

/**
 * Issue 12 #4, the other half: an infrastructure failure (here MongoDB out of
 * reach) is not a poison record. It is retried a bounded number of times with
 * backoff, then the partition is paused and read again later; the record is
 * never dead-lettered nor skipped, and goes through once MongoDB is back.
 */
describe('push.events during a MongoDB outage', () => {
  const id = uniqueId('outage').replace(/[^A-Za-z0-9]/g, '');
  const env = {
    KAFKA_TOPIC_PREFIX: `${id}.`,
    REDIS_KEY_PREFIX: `${id}:`,
    MONGO_DB: id,
    INGEST_PARTITIONS: '1',
    EVENTS_RETRIES: '2',
    EVENTS_RETRY_BACKOFF_MS: '100',
    EVENTS_PAUSE_MS: '3000',
  };
  const topics = topicNames(env.KAFKA_TOPIC_PREFIX);
  const app = `app-${id}`;
  const mongoUrl = new URL(infra.mongoUrl);
  const proxy = tcpProxy(mongoUrl.hostname, Number(mongoUrl.port || 27017));
  const mongo = new MongoClient(infra.mongoUrl);
  const reader = topicReader('outage-test');
  let collector: RunningService | undefined;
  let kafka: Awaited<ReturnType<typeof kafkaTools>>;
  before(async () => {
    await createAppStore({ db: mongo.db(id) }).upsert({ id: app, apiKeys: [`key-${id}`] });
    await proxy.open();
    collector = await startService('collector', { ...env, MONGO_URL: `mongodb://127.0.0.1:${proxy.port}/?directConnection=true` });
    kafka = await kafkaTools('outage-test');
  });
  after(async () => {
    await reader.close();
    await kafka?.close();
    await proxy.open().catch(() => undefined);
    await collector?.stop('SIGTERM', 10_000);
    await proxy.cut();
    await mongo
      .db(id)
      .dropDatabase()
      .catch(() => undefined);
    await mongo.close();
  });

  test('retried with backoff, then the partition is paused; nothing goes to push.dlq; delivered once MongoDB is back', { timeout: 120_000 }, async () => {
    const ingest = await reader.follow(topics.ingest, (v, h) => decodeRecord('IngestRecord', v, h) as IngestRecord);
    const letters = await reader.follow(topics.dlq, (v, h) => decodeRecord('DeadLetter', v, h) as DeadLetter);
    // Persistent: the message must be stored before it is published, so MongoDB out of reach stops it.
    const send = (n: number) =>
      kafka.producer.send({ topic: topics.events, messages: [eventRecord(businessEvent(app, ['oz'], { n }, { persistent: true }), `${app}|oz`)] });
    const arrived = (n: number) => ingest.some((r) => r.payload === JSON.stringify({ n }));
    await send(1);
    await eventually(() => arrived(1), { timeoutMs: 30_000, what: 'the first record on push.ingest' });

    await proxy.cut();
    await send(2);
    const metric = async (name: string) => {
      const text = await (await fetch(`${collector!.url}/metrics`)).text();
      return Number(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\d+)`, 'm').exec(text)?.[1] ?? 0);
    };
    await eventually(async () => (await metric('push_events_paused_total')) >= 1, { timeoutMs: 60_000, intervalMs: 250, what: 'the partition paused' }).catch(
      (err: Error) => {
        throw new Error(`${err.message}; collector output:\n${collector!.output().slice(-4000)}`);
      },
    );
    assert.ok((await metric('push_events_retries_total')) >= 1, 'retried before pausing');
    assert.ok(!arrived(2));

    await proxy.open();
    await eventually(() => arrived(2), { timeoutMs: 60_000, intervalMs: 200, what: 'the record after MongoDB came back' });
    assert.deepEqual(
      letters.filter((l) => l.sourceTopic === topics.events),
      [],
      'an outage is no reason to dead-letter a record',
    );
    assert.match(collector!.output(), /partition paused after repeated infrastructure failures/);
  });
});
