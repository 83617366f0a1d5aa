import type { App, AppStore } from '../../common/src/apps.js';

/**
 * App lookups on the handshake path. A burst of connections must not wait
 * behind the store: one query per app at a time, and an entry that is due for
 * a refresh keeps answering while the refresh runs (up to `maxStaleMs`).
 */
export function createAppLookup(apps: AppStore, { refreshMs = 5000, maxStaleMs = 60_000, maxEntries = 10_000 } = {}) {
  const entries = new Map<string, { app: App | undefined; at: number }>();
  const loading = new Map<string, Promise<App | undefined>>();

  const load = (id: string): Promise<App | undefined> => {
    let p = loading.get(id);
    if (!p) {
      p = apps.get(id).then((app) => {
        if (!entries.has(id) && entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entries.set(id, { app, at: Date.now() });
        return app;
      });
      p.finally(() => loading.delete(id)).catch(() => undefined);
      loading.set(id, p);
    }
    return p;
  };

  return async (id: string): Promise<App | undefined> => {
    const e = entries.get(id);
    const age = e ? Date.now() - e.at : Infinity;
    if (e && age < refreshMs) return e.app;
    if (e && age < maxStaleMs) {
      load(id).catch(() => undefined);
      return e.app;
    }
    return load(id);
  };
}
