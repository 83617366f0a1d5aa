/**
 * The last `capacity` message ids seen, to drop redeliveries. A Map keeps
 * insertion order, so evicting the oldest is O(1) and memory stays bounded
 * however long the client runs. Each id also remembers whether it was acked,
 * so a redelivered copy is acked again only once the app is done with it.
 */
export interface RecentIds {
  /** Records `id`; false if it was already recorded (a duplicate). */
  add(id: string): boolean;
  has(id: string): boolean;
  /** Forgets `id`, so a redelivery of it is taken again (used when the app failed to handle it). */
  forget(id: string): void;
  markAcked(id: string): void;
  isAcked(id: string): boolean;
  readonly size: number;
}

export function createRecentIds(capacity: number): RecentIds {
  const seen = new Map<string, boolean>();
  return {
    add(id) {
      if (seen.has(id)) return false;
      seen.set(id, false);
      if (seen.size > capacity) seen.delete(seen.keys().next().value as string);
      return true;
    },
    has: (id) => seen.has(id),
    forget(id) {
      seen.delete(id);
    },
    markAcked(id) {
      if (seen.has(id)) seen.set(id, true);
    },
    isAcked: (id) => seen.get(id) === true,
    get size() {
      return seen.size;
    },
  };
}
