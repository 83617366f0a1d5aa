import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPrivateKafka } from '../infra/stack.js';
import { connectClient, startStack, type TestClient, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';

describe('Kafka outage', () => {
  let kafka: Awaited<ReturnType<typeof startPrivateKafka>>;
  let s: TestStack;
  before(async () => {
    kafka = await startPrivateKafka();
    s = await startStack({ env: { KAFKA_BROKERS: kafka.brokers, COLLECTOR_PUBLISH_TIMEOUT_MS: '1000' } });
  });
  after(async () => {
    await s?.stop();
    await kafka?.dispose();
  });

  test('persistent messages accepted while Kafka is down are stored, then delivered by the outbox after it returns', { timeout: 120_000 }, async () => {
    const client: TestClient = await connectClient(s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws', (await s.token('ivy', 'phone')).token);
    const before = await s.send({ to: { users: ['ivy'] }, payload: 'before' });
    await client.waitFor(1);
    await kafka.stop();

    const during: string[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await s.send({ to: { users: ['ivy'] }, payload: { during: i } });
      assert.equal(r.status, 202, JSON.stringify(r.body));
      assert.equal(r.body.status, 'stored', 'accepted into the store, publish deferred');
      during.push(r.body.id);
    }
    const transient = await s.send({ to: { users: ['ivy'] }, payload: 'typing', persistent: false });
    assert.equal(transient.status, 503, 'a transient message cannot be kept: refused');
    assert.equal(transient.body.error.code, 'KAFKA_UNAVAILABLE');

    await kafka.restart();
    await eventually(() => during.every((id) => client.messages.some((m) => m.id === id)), {
      timeoutMs: 90_000,
      intervalMs: 200,
      what: 'outbox delivery after Kafka restart',
    });
    // At-least-once: a publish that timed out may also have reached Kafka, so the
    // outbox can repeat it. Clients de-duplicate by id, as the SDK does.
    const ids = [...new Set(client.messages.map((m) => m.id))];
    assert.equal(ids[0], before.body.id);
    assert.deepEqual(
      ids.filter((id) => during.includes(id)),
      during,
      'in order, none missing',
    );
    await client.close();
  });
});
