import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { MessageStore } from '../../common/src/messageStore.js';
import type { IngestRecord } from '../../schemas/types.js';
import { createInboxAppender } from './appendInboxes.js';

const rec = (id: string, user: string): IngestRecord => ({
  id, app: 'a', target: 'USER', user, group: null, payload: '{}', persistent: true, createdAt: 0, expiresAt: 10_000,
  collapseKey: null, traceId: id, taskId: null,
});

test('inboxes with a record seen before take the merging (compact) path; the others append', async () => {
  const calls: { user: string; ids: string[]; compact: boolean }[] = [];
  const store = { appendToInboxes: async (entries: { user: string; items: { m: string }[]; compact: boolean }[]) => {
    for (const e of entries) calls.push({ user: e.user, ids: e.items.map((i) => i.m), compact: e.compact });
  } } as unknown as MessageStore;
  const append = createInboxAppender(store);
  const again = rec('m1', 'u1');
  await append([again, rec('m2', 'u1'), rec('m3', 'u2')], 1000, new Set([again]));
  assert.deepEqual(calls, [
    { user: 'u1', ids: ['m1', 'm2'], compact: true },
    { user: 'u2', ids: ['m3'], compact: false },
  ]);
});
