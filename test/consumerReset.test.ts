import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { pino } from 'pino';
import { createKafka } from '../platform/kafka/kafka.js';
import { createDeliveryStore } from '../store/deliveryStore.js';
import { topicNames } from '../protocol/topics.js';
import { kafkaLibsDir, provisionKafka } from '../infra/kafka.js';
import { connectClient, receiveAndAck, startStack, wsOf, type TestStack } from './support/stack.js';
import { stack as infra } from './support/env.js';
import { eventually } from './support/eventually.js';

/**
 * Kafka's own consumer-groups tool, from the broker's jars: the class
 * `kafka-consumer-groups.sh` runs (in Kafka 3.9 it moved from
 * kafka.admin.ConsumerGroupCommand to the tools jar).
 */
function consumerGroups(args: string[]): string {
  const res = spawnSync(
    'java',
    [
      '-Xmx256m',
      '-cp',
      `${kafkaLibsDir}${path.sep}*`,
      'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
      '--bootstrap-server',
      infra.kafkaBrokers[0]!,
      ...args,
    ],
    {
      encoding: 'utf8',
      timeout: 120_000,
    },
  );
  assert.equal(res.status, 0, `kafka-consumer-groups failed: ${res.error?.message ?? ''}\n${res.stdout}\n${res.stderr}`);
  return res.stdout;
}

describe('resetting the dispatcher group with Kafka tools', () => {
  let s: TestStack;
  before(async () => {
    // The tool runs from the broker's jars, which a checkout using a Kafka it did not start has not fetched yet.
    await provisionKafka((line) => console.log(`[infra] ${line}`));
    // Routes live 3 heartbeats: long ones keep them from lapsing on a loaded machine (this test is about offsets).
    s = await startStack({ env: { PUSHER_HEARTBEAT_MS: '10000' } });
  });
  after(async () => {
    await s?.stop();
  });

  test('stop, --reset-offsets --to-datetime, restart: no duplicates on clients, nothing lost', { timeout: 180_000 }, async () => {
    const topics = topicNames(s.env.KAFKA_TOPIC_PREFIX);
    const store = createDeliveryStore(s.mongo.db(s.env.MONGO_DB));
    const send = async (users: string[], n: string, persistent = true) => {
      const r = await s.send({ to: { users }, payload: { n }, persistent, ttlSeconds: 3600 });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      return r.body.id as string;
    };
    const kim = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('kim', 'phone')).token);
    const seenByKim = new Set<string>();
    receiveAndAck(kim, seenByKim);

    const since = new Date(Date.now() - 1000);
    const before: string[] = [];
    for (let i = 1; i <= 5; i++) before.push(await send(['kim', 'lee'], `m${i}`));
    const transient = await send(['kim'], 'typing', false);
    await kim.waitFor(6);
    await eventually(() => store.deviceState(s.app, 'kim', 'phone'), {
      what: 'kim acks stored',
      until: (st) => before.every((id) => st.acked.includes(id)),
      timeoutMs: 20_000,
      intervalMs: 100,
    });

    // Stop the dispatcher; messages keep coming in meanwhile.
    const dispatcher = s.dispatchers[0]!;
    assert.equal(await dispatcher.stop('SIGTERM', 15_000), 0);
    const during = [await send(['kim', 'lee'], 'm6'), await send(['kim', 'lee'], 'm7')];

    const kafka = createKafka({ clientId: 'reset-test', brokers: infra.kafkaBrokers, logger: pino({ level: 'silent' }) });
    const admin = kafka.admin();
    await admin.connect();
    try {
      const committed = async () => (await admin.fetchOffsets({ groupId: topics.groups.dispatcher, topics: [topics.ingest] }))[0]!.partitions;
      const beforeReset = await committed();
      const out = consumerGroups([
        '--group',
        topics.groups.dispatcher,
        '--topic',
        topics.ingest,
        '--reset-offsets',
        '--to-datetime',
        since.toISOString(),
        '--execute',
      ]);
      assert.match(out, new RegExp(`${topics.ingest.replace(/\./g, '\\.')}\\s+\\d+\\s+\\d+`), out);
      const afterReset = await committed();
      const total = (ps: { offset: string }[]) => ps.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0);
      // Back to before m1: every record since is read again (m1..m5 and the transient one twice over).
      assert.ok(total(afterReset) <= total(beforeReset) - 6, `offsets did not move back: ${JSON.stringify({ beforeReset, afterReset })}`);
      // The tool's own view: offsets moved back, and nobody consumes while the dispatcher is down.
      const rows = consumerGroups(['--describe', '--group', topics.groups.dispatcher])
        .split('\n')
        .filter((l) => l.startsWith(topics.groups.dispatcher))
        .map((l) => l.trim().split(/\s+/));
      assert.equal(rows.length, afterReset.length);
      assert.equal(
        rows.reduce((a, r) => a + Number(r[3]), 0),
        total(afterReset),
      );
      assert.ok(
        rows.every((r) => r[6] === '-'),
        'the group has no members',
      );
    } finally {
      await admin.disconnect();
    }

    const restarted = await s.startDispatcher();
    const after = await send(['kim', 'lee'], 'm8');
    await kim.waitFor(9, 60_000).catch((err: Error) => {
      throw new Error(`${err.message}; restarted dispatcher said:\n${restarted.output().slice(-3000)}`);
    });
    const kimIds = kim.messages.map((m) => m.id);
    assert.deepEqual(kimIds, [...before, transient, ...during, after], 'kim: each message once, the ones sent while the dispatcher was down included');
    assert.equal(seenByKim.size, kimIds.length);

    // Lee was offline throughout: the inbox holds each id once, and the resume delivers them in order.
    const lee = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('lee', 'laptop')).token);
    await lee.waitFor(8);
    const marker = await send(['lee'], 'marker');
    await lee.waitFor(9);
    assert.deepEqual(
      lee.messages.map((m) => m.id),
      [...before, ...during, after, marker],
    );
    const items = await createDeliveryStore(s.mongo.db(s.env.MONGO_DB)).deliveryIds(s.app, 'lee');
    assert.equal(new Set(items).size, items.length, `duplicates in lee's inbox: ${items.join(',')}`);
    await kim.close();
    await lee.close();
  });
});
