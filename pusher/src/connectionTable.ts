import type { Connection } from './connection.js';

function addTo<K>(map: Map<K, Set<Connection>>, key: K, conn: Connection): boolean {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  const before = set.size;
  set.add(conn);
  return before === 0 && set.size === 1;
}

function removeFrom<K>(map: Map<K, Set<Connection>>, key: K, conn: Connection): boolean {
  const set = map.get(key);
  if (!set?.delete(conn)) return false;
  if (set.size > 0) return false;
  map.delete(key);
  return true;
}

/**
 * This node's live connections, indexed by user (every device of a user gets
 * every message), by app (broadcasts) and by group (subscriptions).
 */
export class ConnectionTable {
  private readonly byUser = new Map<string, Set<Connection>>();
  private readonly byApp = new Map<string, Set<Connection>>();
  private readonly byGroup = new Map<string, Set<Connection>>();
  private count = 0;

  add(conn: Connection): void {
    addTo(this.byUser, conn.userKey, conn);
    addTo(this.byApp, conn.app, conn);
    this.count++;
  }

  /** Removes a connection; returns the groups it was the last local subscriber of. */
  remove(conn: Connection): string[] {
    if (!this.byUser.get(conn.userKey)?.has(conn)) return [];
    removeFrom(this.byUser, conn.userKey, conn);
    removeFrom(this.byApp, conn.app, conn);
    this.count--;
    const emptied: string[] = [];
    for (const group of conn.groups ?? []) if (removeFrom(this.byGroup, `${conn.app}|${group}`, conn)) emptied.push(group);
    return emptied;
  }

  /** Subscribes; true when this is the group's first local subscriber. */
  subscribe(conn: Connection, group: string): boolean {
    (conn.groups ??= new Set()).add(group);
    return addTo(this.byGroup, `${conn.app}|${group}`, conn);
  }

  /** Unsubscribes; true when that was the group's last local subscriber. */
  unsubscribe(conn: Connection, group: string): boolean {
    if (!conn.groups?.delete(group)) return false;
    return removeFrom(this.byGroup, `${conn.app}|${group}`, conn);
  }

  forUser(app: string, user: string): Set<Connection> | undefined {
    return this.byUser.get(`${app}|${user}`);
  }

  forApp(app: string): Set<Connection> | undefined {
    return this.byApp.get(app);
  }

  forGroup(app: string, group: string): Set<Connection> | undefined {
    return this.byGroup.get(`${app}|${group}`);
  }

  /** Every (app, group) with local subscribers, for heartbeat refresh. */
  groups(): { app: string; group: string }[] {
    return [...this.byGroup.keys()].map((k) => {
      const i = k.indexOf('|');
      return { app: k.slice(0, i), group: k.slice(i + 1) };
    });
  }

  get size(): number {
    return this.count;
  }

  *all(): IterableIterator<Connection> {
    for (const set of this.byUser.values()) yield* set;
  }
}
