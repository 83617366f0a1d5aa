export interface CachedLookupOptions {
  /** An answer younger than this is served from memory. */
  refreshMs: number;
  /** A found value keeps answering while its refresh runs, up to this age (a store outage does not stop at once). */
  maxStaleMs?: number;
  maxEntries?: number;
  /** Whether "not found" is also served stale while it refreshes (else each lookup past `refreshMs` asks again). */
  staleMisses?: boolean;
}

/**
 * A lookup on a hot path (handshakes, submissions) that must not wait behind
 * the store: answers from memory, one query per key at a time (a burst shares
 * it), and a value due for a refresh keeps answering while the refresh runs.
 * Bounded: past `maxEntries` the oldest entry goes.
 */
export function createCachedLookup<T>(
  fetch: (key: string) => Promise<T | undefined>,
  { refreshMs, maxStaleMs = 60_000, maxEntries = 10_000, staleMisses = false }: CachedLookupOptions,
): (key: string) => Promise<T | undefined> {
  const entries = new Map<string, { value: T | undefined; at: number }>();
  const loading = new Map<string, Promise<T | undefined>>();

  const load = (key: string): Promise<T | undefined> => {
    let p = loading.get(key);
    if (!p) {
      p = fetch(key).then((value) => {
        if (!entries.has(key) && entries.size >= maxEntries) entries.delete(entries.keys().next().value!);
        entries.set(key, { value, at: Date.now() });
        return value;
      });
      p.finally(() => loading.delete(key)).catch(() => undefined);
      loading.set(key, p);
    }
    return p;
  };

  return (key) => {
    const e = entries.get(key);
    const age = e ? Date.now() - e.at : Infinity;
    if (e && age < refreshMs) return Promise.resolve(e.value);
    if (e && (staleMisses || e.value !== undefined) && age < maxStaleMs) {
      load(key).catch(() => undefined);
      return Promise.resolve(e.value);
    }
    return load(key);
  };
}
