import type { App, AppStore } from '../../store/apps.js';
import { createCachedLookup } from '../../platform/cachedLookup.js';

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
  return createCachedLookup((key) => apps.findByApiKey(key), { refreshMs, maxStaleMs, maxEntries });
}
