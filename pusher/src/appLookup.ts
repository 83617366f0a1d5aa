import type { App, AppStore } from '../../store/apps.js';
import { createCachedLookup } from '../../platform/cachedLookup.js';

/**
 * App lookups on the handshake path. A burst of connections must not wait
 * behind the store: one query per app at a time, and an entry that is due for
 * a refresh keeps answering while the refresh runs (up to `maxStaleMs`).
 */
export function createAppLookup(apps: AppStore, { refreshMs = 5000, maxStaleMs = 60_000, maxEntries = 10_000 } = {}): (id: string) => Promise<App | undefined> {
  return createCachedLookup((id) => apps.get(id), { refreshMs, maxStaleMs, maxEntries, staleMisses: true });
}
