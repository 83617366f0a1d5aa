import type { App, AppStore } from '../../common/src/apps.js';

export type ApiKeyLookup = (apiKey: string) => Promise<App | undefined>;

/**
 * API key to app, on the submission path. The store's own cache hashes the
 * key on every call and, when its entry lapses, lets every request in flight
 * query the store at once; here a known key answers from memory, one query per
 * key runs at a time, and a known app keeps answering while its refresh runs
 * (up to `maxStaleMs`, so a store outage does not stop ingestion at once).
 * Unknown keys are not served stale: each lookup past `refreshMs` asks again.
 */
export function createApiKeyLookup(apps: AppStore, { refreshMs = 2500, maxStaleMs = 60_000, maxEntries = 10_000 } = {}): ApiKeyLookup {
  const entries = new Map<string, { app: App | undefined; at: number }>();
  const loading = new Map<string, Promise<App | undefined>>();

  const load = (key: string): Promise<App | undefined> => {
    let p = loading.get(key);
    if (!p) {
      p = apps.findByApiKey(key).then((app) => {
        if (!entries.has(key) && entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entries.set(key, { app, at: Date.now() });
        return app;
      });
      p.finally(() => loading.delete(key)).catch(() => undefined);
      loading.set(key, p);
    }
    return p;
  };

  return (key) => {
    const e = entries.get(key);
    const age = e ? Date.now() - e.at : Infinity;
    if (e && age < refreshMs) return Promise.resolve(e.app);
    if (e?.app && age < maxStaleMs) {
      load(key).catch(() => undefined);
      return Promise.resolve(e.app);
    }
    return load(key);
  };
}
