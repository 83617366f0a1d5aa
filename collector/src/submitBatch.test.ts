import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Message } from 'kafkajs';
import { Registry } from 'prom-client';
import { DEFAULT_LIMITS, type App } from '../../store/apps.js';
import { createLogger } from '../../platform/logger.js';
import { PushError } from '../../platform/errors.js';
import { batchMessages, type StoredMessage } from '../../store/messages.js';
import type { IdempotencyClaim } from '../../store/idempotency.js';
import { createCollectorMetrics } from './collectorMetrics.js';
import { submitBatch, type BatchItem } from './submitBatch.js';
import type { SubmitDeps } from './submitMessage.js';

const app: App = {
  _id: 'demo',
  name: 'demo',
  apiKeyHashes: [],
  allowedOrigins: ['*'],
  deviceMode: 'coexist',
  openGroups: true,
  limits: { ...DEFAULT_LIMITS },
  createdAt: new Date(),
};

/** Fakes for the store, keys and publisher, counting the calls a batch makes. */
function fakes(opts: { storeFails?: boolean; publishFails?: (keys: string[]) => Error | undefined; claim?: (key: string) => IdempotencyClaim } = {}) {
  const calls = { storeMessages: 0, claimMany: 0, publish: 0, unstore: 0 };
  const stored = new Map<string, StoredMessage>();
  const published: string[] = [];
  const released: string[] = [];
  const completed: string[] = [];
  const store = {
    async storeMessages(batch: StoredMessage[]) {
      calls.storeMessages++;
      if (opts.storeFails) throw new Error('store down');
      for (const m of batch) stored.set(m._id, m);
    },
    async unstore(ids: string[]) {
      calls.unstore++;
      for (const id of ids) stored.delete(id);
    },
    isStored: async (id: string) => stored.has(id),
  };
  const deps = {
    store,
    messages: batchMessages(store, { maxBatch: 1000 }),
    idempotency: {
      async claimMany(reqs: { key: string }[]) {
        calls.claimMany++;
        return reqs.map((r) => opts.claim?.(r.key) ?? { state: 'claimed' });
      },
      async release(_app: string, key: string) {
        released.push(key);
      },
      async complete(_app: string, key: string) {
        completed.push(key);
        return true;
      },
      gaveUp: () => undefined,
    },
    tasks: { create: async () => undefined },
    publisher: {
      async publish(_topic: string, messages: Message[]) {
        calls.publish++;
        const keys = messages.map((m) => String(m.key));
        const err = opts.publishFails?.(keys);
        if (err) throw err;
        published.push(...keys);
      },
      queued: () => 0,
      close: async () => undefined,
    },
    logger: createLogger('submit-batch-test', 'silent'),
    metrics: createCollectorMetrics(new Registry()),
    markPublished: () => undefined,
    ingestTopic: 'push.ingest',
  } as unknown as SubmitDeps;
  return { deps, calls, stored, published, released, completed };
}

const item = (user: string, key: string, persistent = true): BatchItem => ({
  app,
  sub: { to: { kind: 'users', users: [user] }, payload: '1', persistent, ttlSeconds: 60, idempotencyKey: key },
  lane: `demo|${user}`,
  keepUntil: new Date(Date.now() + 60_000),
});

test('a batch of 500 costs one claim, one store write and one publish, in item order', async () => {
  const f = fakes();
  const items = Array.from({ length: 500 }, (_, i) => item(`u${i % 37}`, `k${i}`));
  const outcomes = await submitBatch(f.deps, items);
  assert.ok(outcomes.every((o) => 'result' in o && o.result.status === 'accepted'));
  assert.deepEqual(f.calls, { storeMessages: 1, claimMany: 1, publish: 1, unstore: 0 });
  assert.equal(f.stored.size, 500);
  assert.deepEqual(
    f.published,
    items.map((i) => i.lane),
  );
  assert.equal(f.completed.length, 500);
});

test('behind a record that a retry may fix, the later records of its lane are skipped and their keys given back', async () => {
  const f = fakes({
    claim: (key) => (key === 'k1' ? { state: 'in-progress', id: 'x' } : key === 'k4' ? { state: 'duplicate', id: 'old' } : { state: 'claimed' }),
  });
  const items = [item('a', 'k0'), item('b', 'k1'), item('a', 'k2'), item('b', 'k3'), item('c', 'k4')];
  const outcomes = await submitBatch(f.deps, items);
  assert.equal((outcomes[1] as { error: PushError }).error.code, 'IDEMPOTENCY_IN_PROGRESS');
  assert.deepEqual(outcomes[3], { skipped: true });
  assert.deepEqual(outcomes[4], { result: { id: 'old', status: 'accepted', duplicate: true } });
  assert.deepEqual(f.published, ['demo|a', 'demo|a']);
  // k3 was skipped before anything was stored for it.
  assert.equal(f.stored.size, 2);
  assert.deepEqual(f.released, ['k3']);
  assert.deepEqual(f.completed.sort(), ['k0', 'k2']);
});

test('when Kafka fails, persistent messages are answered stored (outbox) and transient ones fail with their keys given back', async () => {
  const f = fakes({ publishFails: () => new PushError('KAFKA_UNAVAILABLE', 'down', { status: 503, retriable: true }) });
  const outcomes = await submitBatch(f.deps, [item('a', 'k0'), item('b', 'k1', false), item('b', 'k2')]);
  assert.equal((outcomes[0] as { result: { status: string } }).result.status, 'stored');
  assert.equal((outcomes[1] as { error: PushError }).error.code, 'KAFKA_UNAVAILABLE');
  // Same lane as the failed transient record: not submitted (and not stored) ahead of it.
  assert.deepEqual(outcomes[2], { skipped: true });
  assert.deepEqual(
    [...f.stored.values()].map((m) => m.users),
    [['a']],
  );
  assert.deepEqual(f.released.sort(), ['k1', 'k2']);
  assert.deepEqual(f.completed, ['k0']);
});

test('a record that can never be published fails alone; a store failure fails the persistent records with nothing accepted', async () => {
  const tooLarge = new PushError('RECORD_TOO_LARGE', 'too large', { status: 413 });
  const f = fakes({ publishFails: (keys) => (keys.includes('demo|big') ? tooLarge : undefined) });
  const outcomes = await submitBatch(f.deps, [item('a', 'k0'), item('big', 'k1'), item('c', 'k2')]);
  assert.deepEqual(
    outcomes.map((o) => ('result' in o ? o.result.status : 'error' in o ? (o.error as PushError).code : 'skipped')),
    ['accepted', 'RECORD_TOO_LARGE', 'accepted'],
  );
  assert.deepEqual(f.published, ['demo|a', 'demo|c']);
  assert.deepEqual(f.released, ['k1']);

  const down = fakes({ storeFails: true });
  const failed = await submitBatch(down.deps, [item('a', 'k0'), item('b', 'k1', false), item('a', 'k2', false)]);
  assert.equal((failed[0] as { error: PushError }).error.code, 'STORE_UNAVAILABLE');
  assert.equal((failed[1] as { result: { status: string } }).result.status, 'accepted');
  assert.deepEqual(failed[2], { skipped: true });
  assert.deepEqual(down.published, ['demo|b']);
  assert.deepEqual(down.released.sort(), ['k0', 'k2']);
});
