import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { newId } from '../protocol/ids.js';
import { testDatabase } from '../test/support/testDatabase.js';
import { createMessagesStore, type StoredMessage } from './messages.js';
import { createIdempotencyKeys } from './idempotency.js';

const msg = (id = newId()): StoredMessage => ({
  _id: id,
  app: 'a',
  target: 'USER',
  users: ['u'],
  payload: '"x"',
  persistent: true,
  createdAt: new Date(),
  expiresAt: new Date(Date.now() + 60_000),
  traceId: id,
});

describe('store: messages, outbox and idempotency keys', () => {
  const mongo = testDatabase('storemsgs');

  test('a batch costs one insertMany and one outbox entry; the entry goes once every message is published or taken back', { timeout: 30_000 }, async () => {
    const store = createMessagesStore(mongo.db);
    const batch = Array.from({ length: 20 }, () => msg());
    await store.storeMessages(batch);
    assert.deepEqual(store.ops(), { 'outbox.insert': 1, 'messages.insertMany': 1 });
    assert.equal(await mongo.db.collection('outbox_batches').countDocuments({}), 1);
    assert.equal(await store.isStored(batch[3]!._id), true);
    assert.equal(await store.isStored('nope'), false);
    await store.markPublished(batch.slice(0, 19).map((m) => m._id));
    assert.equal(await mongo.db.collection('outbox_batches').countDocuments({}), 1, 'one message still unpublished');
    await store.unstore([batch[19]!._id]);
    assert.equal(await mongo.db.collection('outbox_batches').countDocuments({}), 0);
    assert.equal(await store.isStored(batch[19]!._id), false);
  });

  test('unpublished: batches stored before the given time, oldest first, with the messages still stored', { timeout: 30_000 }, async () => {
    const store = createMessagesStore(mongo.db, { outboxCollection: 'outbox_u', messagesCollection: 'messages_u' });
    const first = [msg(), msg()];
    const second = [msg()];
    await store.storeMessages(first);
    await store.storeMessages(second);
    // Another process's view (nothing tracked in memory): the sweeper's.
    const other = createMessagesStore(mongo.db, { outboxCollection: 'outbox_u', messagesCollection: 'messages_u' });
    assert.deepEqual(await other.unpublished(new Date(Date.now() - 60_000), 10), []);
    const due = await other.unpublished(new Date(Date.now() + 1000), 10);
    assert.deepEqual(
      due.map((d) => d.messages.map((m) => m._id)),
      [first.map((m) => m._id), second.map((m) => m._id)],
    );
    await other.batchDone(due[0]!.batch._id);
    assert.equal((await other.unpublished(new Date(Date.now() + 1000), 10)).length, 1);
  });

  test(
    'outbox entries of an earlier version (one per message) are adopted into batches; 150 batches published at once are all deleted',
    { timeout: 60_000 },
    async () => {
      const store = createMessagesStore(mongo.db, { outboxCollection: 'outbox_l', messagesCollection: 'messages_l', legacyOutboxCollection: 'outbox_legacy' });
      const old = Array.from({ length: 7 }, () => msg());
      await mongo.db.collection<StoredMessage>('messages_l').insertMany(old);
      await mongo.db.collection<{ _id: string; at: Date }>('outbox_legacy').insertMany(old.map((m) => ({ _id: m._id, at: m.createdAt })));
      assert.equal(await store.adoptLegacyOutbox(5), 5);
      assert.equal(await store.adoptLegacyOutbox(5), 2);
      assert.equal(await store.adoptLegacyOutbox(5), 0);
      const due = await store.unpublished(new Date(Date.now() + 1000), 10);
      assert.deepEqual(due.flatMap((d) => d.messages.map((m) => m._id)).sort(), old.map((m) => m._id).sort());

      const batches = Array.from({ length: 150 }, () => [msg()]);
      for (const b of batches) await store.storeMessages(b);
      await store.markPublished(batches.map((b) => b[0]!._id));
      assert.equal(await mongo.db.collection('outbox_l').countDocuments({}), 2, 'only the two adopted batches are left');
    },
  );

  test(
    'idempotency: release acts only on its own claim, the first completion of a key stands; a stale claim whose message is stored becomes a duplicate',
    { timeout: 30_000 },
    async () => {
      const stored = new Set<string>();
      const idem = createIdempotencyKeys(mongo.db, { isStored: async (id) => stored.has(id) });
      assert.deepEqual(await idem.claim('a', 'k1', 'M1'), { state: 'claimed' });
      assert.deepEqual(await idem.claim('a', 'k1', 'M2'), { state: 'in-progress', id: 'M1' });
      // Taken over (its holder too slow): the old holder cannot release it.
      await mongo.db.collection<{ _id: string; msg: string }>('idempotency').updateOne({ _id: 'a|k1' }, { $set: { msg: 'M3' } });
      await idem.release('a', 'k1', 'M1');
      assert.deepEqual(await idem.claim('a', 'k1', 'M4'), { state: 'in-progress', id: 'M3' });
      // A completion names a durable message: the first one for a key stands, a later one is refused.
      assert.equal(await idem.complete('a', 'k1', 'M1'), true);
      assert.equal(await idem.complete('a', 'k1', 'M3'), false);
      assert.deepEqual(await idem.claim('a', 'k1', 'M5'), { state: 'duplicate', id: 'M1' });

      // The holder gave up not knowing whether its message was stored; it was: a retry finds it.
      assert.deepEqual(await idem.claim('a', 'k2', 'N1'), { state: 'claimed' });
      stored.add('N1');
      idem.gaveUp('N1');
      assert.deepEqual(await idem.claim('a', 'k2', 'N2'), { state: 'duplicate', id: 'N1' });
      // It was not: the retry takes the key over at once.
      assert.deepEqual(await idem.claim('a', 'k3', 'P1'), { state: 'claimed' });
      idem.gaveUp('P1');
      assert.deepEqual(await idem.claim('a', 'k3', 'P2'), { state: 'claimed' });
      assert.equal(await idem.complete('a', 'k3', 'P2'), true);
    },
  );
});
