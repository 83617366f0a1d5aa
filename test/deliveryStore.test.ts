import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import type { CommandStartedEvent, MongoClient } from 'mongodb';
import { createDeliveryStore, type DeliveryStore } from '../store/deliveryStore.js';
import type { StoredMessage } from '../store/messages.js';
import { BROADCAST_INBOX } from '../protocol/tokens.js';
import { newId } from '../protocol/ids.js';
import { stack as infra } from './support/env.js';
import { testDatabase } from './support/testDatabase.js';
import { eventually } from './support/eventually.js';

/** Store commands (finds, inserts, deletes...) sent while `fn` runs, by command name. */
async function countCommands(client: MongoClient, fn: () => Promise<unknown>): Promise<Record<string, number>> {
  const counts: Record<string, number> = {};
  const on = (e: CommandStartedEvent) => {
    if (['find', 'insert', 'update', 'delete', 'getMore'].includes(e.commandName)) counts[e.commandName] = (counts[e.commandName] ?? 0) + 1;
  };
  client.on('commandStarted', on);
  try {
    await fn();
  } finally {
    client.off('commandStarted', on);
  }
  return counts;
}

describe('delivery store: deliveries, acks and attempts as inserts', () => {
  const mongo = testDatabase('deliveries', { monitorCommands: true });
  let store: DeliveryStore;
  const exp = () => Date.now() + 600_000;
  const message = (id: string, over: Partial<StoredMessage> = {}): StoredMessage => ({
    _id: id,
    app: 'a',
    target: 'USER',
    payload: `p-${id}`,
    persistent: true,
    createdAt: new Date(),
    expiresAt: new Date(exp()),
    traceId: id,
    ...over,
  });
  const pending = async (user: string, device: string, opts: { afterId?: string; limit?: number; maxAttempts?: number; app?: string } = {}) =>
    (
      await store.pendingFor([{ app: opts.app ?? 'a', user, device, afterId: opts.afterId ?? '', limit: opts.limit ?? 100 }], {
        maxAttempts: opts.maxAttempts ?? 3,
      })
    )[0]!.map((p) => p.id);

  before(async () => {
    store = createDeliveryStore(mongo.db);
    await store.ensureIndexes();
  });

  test('a batch of deliveries in one call; each device reads its own and the broadcasts in id order, without acked ones', { timeout: 30_000 }, async () => {
    const [m1, m2, b1, m3] = [newId(), newId(), newId(), newId()];
    await mongo.db.collection<StoredMessage>('messages').insertMany([message(m1), message(m2), message(b1, { target: 'ALL' }), message(m3)]);
    await store.appendDeliveries([
      { app: 'a', user: 'u1', m: m1, e: exp() },
      { app: 'a', user: 'u2', m: m1, e: exp() },
      { app: 'a', user: 'u1', m: m2, e: exp() },
      { app: 'a', user: BROADCAST_INBOX, m: b1, e: exp() },
      { app: 'a', user: 'u1', m: m3, e: exp() },
    ]);
    // A replay stores the same deliveries again: ignored, nothing doubled.
    await store.appendDeliveries([
      { app: 'a', user: 'u1', m: m1, e: exp() },
      { app: 'a', user: 'u1', m: m2, e: exp() },
    ]);
    assert.deepEqual(await store.deliveryIds('a', 'u1'), [m1, m2, m3]);
    assert.deepEqual(await pending('u1', 'phone'), [m1, m2, b1, m3]);
    assert.deepEqual(await pending('u2', 'phone'), [m1, b1]);
    assert.deepEqual(await pending('u1', 'phone', { afterId: m2, limit: 1 }), [b1]);
    await store.ack([
      { app: 'a', user: 'u1', device: 'phone', ids: [m1, b1], expiresAt: [m1, b1].map(exp) },
      { app: 'a', user: 'u2', device: 'phone', ids: [m1], expiresAt: [m1].map(exp) },
    ]);
    await store.ack([{ app: 'a', user: 'u1', device: 'phone', ids: [m1], expiresAt: [m1].map(exp) }]); // again: ignored
    assert.deepEqual(await pending('u1', 'phone'), [m2, m3]);
    assert.deepEqual(await pending('u1', 'tablet'), [m1, m2, b1, m3], 'acks are per device');
    assert.deepEqual(await pending('u2', 'phone'), [b1]);
    assert.deepEqual(await store.deviceState('a', 'u1', 'phone'), { acked: [m1, b1].sort(), tries: {} });
    assert.deepEqual(await pending('nobody', 'phone'), [b1]);
    // Losing the deliveries (what a replay then restores) keeps what devices acknowledged.
    assert.equal(await store.forgetDeliveries('a', 'u1'), 3);
    assert.deepEqual(await store.deliveryIds('a', 'u1'), []);
    assert.deepEqual((await store.deviceState('a', 'u1', 'phone')).acked, [m1, b1].sort());
  });

  test('collapse key, expiry and stopped broadcast tasks are resolved when read; stale deliveries are deleted', { timeout: 30_000 }, async () => {
    const [k1, k2, gone, t1, t2] = [newId(), newId(), newId(), newId(), newId()];
    await mongo.db.collection<StoredMessage>('messages').insertMany([k1, k2, gone, t1, t2].map((id) => message(id)));
    await store.appendDeliveries([
      { app: 'c', user: 'c1', m: k1, e: exp(), k: 'score' },
      { app: 'c', user: 'c1', m: k2, e: exp(), k: 'score' },
      { app: 'c', user: 'c1', m: gone, e: Date.now() - 1 },
      { app: 'c', user: 'c1', m: t1, e: exp(), t: 'T-stopped' },
      { app: 'c', user: 'c1', m: t2, e: exp(), t: 'T-running' },
    ]);
    const res = await store.pendingFor([{ app: 'c', user: 'c1', device: 'd', afterId: '', limit: 10 }], {
      maxAttempts: 3,
      stoppedTasks: async (ids) => new Set(ids.filter((id) => id === 'T-stopped')),
    });
    assert.deepEqual(
      res[0]!.map((p) => p.id),
      [k2, t2],
    );
    // The superseded and the expired delivery are deleted in the background.
    const left = await eventually(() => store.deliveryIds('c', 'c1'), {
      what: 'the superseded and expired deliveries deleted',
      until: (ids) => ids.length <= 3,
      timeoutMs: 5000,
      intervalMs: 100,
    });
    assert.deepEqual(left, [k2, t1, t2]);
  });

  test('a small payload is kept with the delivery and read from it; a large one comes from messages', { timeout: 30_000 }, async () => {
    const [small, large] = [newId(), newId()];
    const big = 'x'.repeat(5000);
    await mongo.db.collection<StoredMessage>('messages').insertMany([message(small, { payload: 'from-messages' }), message(large, { payload: big })]);
    await store.appendDeliveries([
      { app: 'i', user: 'i1', m: small, e: exp(), p: 'inline', c: 1234 },
      { app: 'i', user: 'i1', m: large, e: exp(), p: big, c: 1234 },
    ]);
    const [page] = await store.pendingFor([{ app: 'i', user: 'i1', device: 'd', afterId: '', limit: 10 }], { maxAttempts: 3 });
    assert.deepEqual(
      page!.map((p) => [p.id, p.payload.length, p.createdAt === 1234]),
      [
        [small, 'inline'.length, true],
        [large, 5000, false],
      ],
    );
  });

  test('attempts: counted per device, a message at maxAttempts is parked for that device only', { timeout: 30_000 }, async () => {
    const m = newId();
    await mongo.db.collection<StoredMessage>('messages').insertOne(message(m));
    await store.appendDeliveries([{ app: 'p', user: 'p1', m, e: exp() }]);
    for (let attempt = 1; attempt <= 2; attempt++) {
      const [page] = await store.pendingFor([{ app: 'p', user: 'p1', device: 'd1', afterId: '', limit: 10 }], { maxAttempts: 2 });
      assert.deepEqual(
        page!.map((p) => [p.id, p.attempts]),
        [[m, attempt - 1]],
      );
      const parked = await store.recordAttempts([{ app: 'p', user: 'p1', device: 'd1', id: m, conn: `c${attempt}`, attempt, expiresAt: exp() }], 2);
      assert.equal(parked.length, attempt === 2 ? 1 : 0);
    }
    assert.deepEqual(await pending('p1', 'd1', { maxAttempts: 2, app: 'p' }), []);
    assert.deepEqual(await pending('p1', 'd2', { maxAttempts: 2, app: 'p' }), [m]);
    assert.deepEqual((await store.deviceState('p', 'p1', 'd1')).tries, { [m]: 2 });
  });

  test('attempts of two connections that read the same count both count (a closing connection writes late)', { timeout: 30_000 }, async () => {
    const m = newId();
    await mongo.db.collection<StoredMessage>('messages').insertOne(message(m));
    await store.appendDeliveries([{ app: 'q', user: 'q1', m, e: exp() }]);
    const read = async () => (await store.pendingFor([{ app: 'q', user: 'q1', device: 'd1', afterId: '', limit: 10 }], { maxAttempts: 5 }))[0]!;
    const [first, second] = [await read(), await read()];
    assert.deepEqual([first[0]!.attempts, second[0]!.attempts], [0, 0]);
    await store.recordAttempts([{ app: 'q', user: 'q1', device: 'd1', id: m, conn: 'newconn1', attempt: 1, expiresAt: exp() }], 5);
    await store.recordAttempts([{ app: 'q', user: 'q1', device: 'd1', id: m, conn: 'oldconn1', attempt: 1, expiresAt: exp() }], 5);
    assert.deepEqual((await store.deviceState('q', 'q1', 'd1')).tries, { [m]: 2 });
  });

  test('store operations: one insert per slice of deliveries; a batch of resumes reads the broadcasts once per app', { timeout: 60_000 }, async () => {
    const ids = Array.from({ length: 2 }, () => newId());
    const broadcast = newId();
    await mongo.db.collection<StoredMessage>('messages').insertMany([...ids, broadcast].map((id) => message(id)));
    await store.appendDeliveries([{ app: 'o', user: BROADCAST_INBOX, m: broadcast, e: exp() }]);
    const users = Array.from({ length: 100 }, (_, i) => `s${i}`);
    // Small payloads are kept with the deliveries (no message read on resume); the broadcast's is read from messages.
    const slice = await countCommands(mongo.client, () =>
      store.appendDeliveries(users.flatMap((user) => ids.map((m) => ({ app: 'o', user, m, e: exp(), p: `p-${m}`, c: Date.now() })))),
    );
    assert.deepEqual(slice, { insert: 1 }, '200 deliveries, one insert');
    const reqs = users.map((user) => ({ app: 'o', user, device: 'phone', afterId: '', limit: 10 }));
    let pages: Awaited<ReturnType<DeliveryStore['pendingFor']>> = [];
    const read = await countCommands(mongo.client, async () => (pages = await store.pendingFor(reqs, { maxAttempts: 3 })));
    assert.ok(
      pages.every((p) => p.length === 2 + 1),
      'two own messages and the broadcast each',
    );
    // 100 user finds (deliveries with their payloads, and receipts) + 1 broadcast find + the broadcast's body.
    assert.deepEqual(read, { find: 100 + 1 + 1 });
    assert.deepEqual(
      pages[0]!.map((p) => p.payload),
      [...ids, broadcast].sort().map((id) => `p-${id}`),
    );
    const attempts = pages.flatMap((page, i) =>
      page.map((p) => ({ app: 'o', user: users[i]!, device: 'phone', id: p.id, conn: `c${i}`, attempt: 1, expiresAt: exp() })),
    );
    assert.deepEqual(await countCommands(mongo.client, () => store.recordAttempts(attempts, 3)), { insert: 1 });
    assert.deepEqual(
      await countCommands(mongo.client, () => store.ack(users.map((user) => ({ app: 'o', user, device: 'phone', ids, expiresAt: ids.map(exp) })))),
      {
        insert: 1,
      },
    );
    console.log(`store commands: 200 deliveries ${JSON.stringify(slice)}; 100 resumes ${JSON.stringify(read)}`);
  });

  test(
    'many writers in several processes store deliveries, ack and record attempts for one user and device at once: nothing is lost or doubled',
    { timeout: 120_000 },
    async () => {
      const ids = Array.from({ length: 200 }, () => newId());
      const workers = 4;
      const run = (worker: number) =>
        new Promise<void>((resolve, reject) => {
          const child = spawn(
            process.execPath,
            [
              '--import',
              'tsx',
              'test/support/deliveryWriter.ts',
              infra.mongoUrl,
              mongo.db.databaseName,
              'a',
              'busy',
              'phone',
              String(worker),
              String(workers),
              ids.join(','),
            ],
            { stdio: ['ignore', 'inherit', 'inherit'] },
          );
          child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${worker} exited with ${code}`))));
        });
      // In this process too, at the same time: the same acks again, concurrently.
      await Promise.all([
        ...Array.from({ length: workers }, (_, w) => run(w)),
        ...Array.from({ length: 20 }, (_, i) =>
          store.ack([{ app: 'a', user: 'busy', device: 'phone', ids: ids.slice(i * 10, i * 10 + 10), expiresAt: ids.slice(i * 10, i * 10 + 10).map(exp) }]),
        ),
      ]);
      assert.deepEqual(await store.deliveryIds('a', 'busy'), [...ids].sort(), 'every delivery stored once');
      const state = await store.deviceState('a', 'busy', 'phone');
      assert.deepEqual(state.acked, [...ids].sort(), 'every ack counted once');
      // Connection `shared`'s attempt, written by every worker, is one attempt; each worker's own connection adds one.
      assert.ok(
        ids.every((id) => state.tries[id] === 1 + workers),
        `attempts: ${JSON.stringify(Object.values(state.tries).slice(0, 5))}`,
      );
    },
  );
});
