import type { Connection } from './connection.js';

/** This node's live connections, by user (every device of a user gets every message). */
export class ConnectionTable {
  private readonly byUser = new Map<string, Set<Connection>>();
  private count = 0;

  add(conn: Connection): void {
    let set = this.byUser.get(conn.userKey);
    if (!set) this.byUser.set(conn.userKey, (set = new Set()));
    set.add(conn);
    this.count++;
  }

  remove(conn: Connection): void {
    const set = this.byUser.get(conn.userKey);
    if (!set?.delete(conn)) return;
    this.count--;
    if (set.size === 0) this.byUser.delete(conn.userKey);
  }

  forUser(app: string, user: string): Set<Connection> | undefined {
    return this.byUser.get(`${app}|${user}`);
  }

  get size(): number {
    return this.count;
  }

  *all(): IterableIterator<Connection> {
    for (const set of this.byUser.values()) yield* set;
  }
}
