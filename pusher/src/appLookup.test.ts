import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { App, AppStore } from '../../store/apps.js';
import { createAppLookup } from './appLookup.js';

/** An app store whose `get` answers only when the test releases it, counting queries. */
function slowStore() {
  const waiting: (() => void)[] = [];
  let version = 0;
  const store = {
    queries: 0,
    release: () => waiting.splice(0).forEach((r) => r()),
    get(id: string) {
      store.queries++;
      const v = ++version;
      return new Promise<App | undefined>((resolve) => waiting.push(() => resolve({ _id: id, name: `v${v}` } as App)));
    },
  };
  return store;
}

test('a burst of lookups for one app makes one query', { timeout: 5000 }, async () => {
  const store = slowStore();
  const lookup = createAppLookup(store as unknown as AppStore);
  const burst = Promise.all(Array.from({ length: 100 }, () => lookup('a')));
  store.release();
  const apps = await burst;
  assert.equal(store.queries, 1);
  assert.ok(apps.every((a) => a?.name === 'v1'));
});

test('an entry due for refresh answers at once while one refresh runs', { timeout: 5000 }, async () => {
  const store = slowStore();
  const lookup = createAppLookup(store as unknown as AppStore, { refreshMs: 0, maxStaleMs: 60_000 });
  const first = lookup('a');
  store.release();
  assert.equal((await first)?.name, 'v1');
  // Due for refresh: the stale entry answers without waiting for the (unreleased) query.
  assert.equal((await lookup('a'))?.name, 'v1');
  assert.equal((await lookup('a'))?.name, 'v1');
  assert.equal(store.queries, 2, 'one refresh in flight, not one per lookup');
  store.release();
  await new Promise((r) => setImmediate(r));
  const next = lookup('a');
  store.release();
  assert.equal((await next)?.name, 'v2');
});
