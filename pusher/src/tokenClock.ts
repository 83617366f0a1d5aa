import type { Connection } from './connection.js';

export interface TokenClockOptions {
  /** How long before `exp` a connection is warned. */
  warningMs: number;
  /** Called once per token, `warningMs` before it expires (at once if it is closer than that). */
  onWarn(conn: Connection): void;
  /** Called when the token has expired and no fresh one arrived. */
  onExpire(conn: Connection): void;
}

/**
 * Watches token expiry for every connection with one timer per node, not one
 * per connection: connections wait in per-second slots, and a 1 s tick walks
 * the slots that came due. A connection sits in one slot at a time (its
 * warning, then its expiry), so the cost is a Set entry per connection.
 */
export function createTokenClock(o: TokenClockOptions) {
  const slots = new Map<number, Set<Connection>>();
  let doneUpTo = Math.floor(Date.now() / 1000);

  const place = (conn: Connection, atMs: number) => {
    const slot = Math.max(Math.ceil(atMs / 1000), doneUpTo + 1);
    let set = slots.get(slot);
    if (!set) slots.set(slot, (set = new Set()));
    set.add(conn);
    conn.clockSlot = slot;
  };

  const unplace = (conn: Connection) => {
    if (conn.clockSlot === undefined) return;
    const set = slots.get(conn.clockSlot);
    set?.delete(conn);
    if (set?.size === 0) slots.delete(conn.clockSlot);
    conn.clockSlot = undefined;
  };

  /** Warns now if due, then waits for the next moment that needs attention. */
  const visit = (conn: Connection, now: number) => {
    if (conn.closed) return;
    if (now >= conn.tokenExpiresAt) return o.onExpire(conn);
    const warnAt = conn.tokenExpiresAt - o.warningMs;
    if (!conn.tokenWarned && now >= warnAt) {
      conn.tokenWarned = true;
      o.onWarn(conn);
    }
    place(conn, conn.tokenWarned ? conn.tokenExpiresAt : warnAt);
  };

  const tick = () => {
    const now = Date.now();
    const upTo = Math.floor(now / 1000);
    for (let s = doneUpTo + 1; s <= upTo; s++) {
      const set = slots.get(s);
      if (!set) continue;
      slots.delete(s);
      for (const conn of set) {
        conn.clockSlot = undefined;
        visit(conn, now);
      }
    }
    doneUpTo = upTo;
  };
  const timer = setInterval(tick, 1000);
  timer.unref();

  return {
    /** Starts (or, after a fresh token, restarts) watching `conn.tokenExpiresAt`. */
    track(conn: Connection): void {
      unplace(conn);
      conn.tokenWarned = false;
      visit(conn, Date.now());
    },
    untrack: unplace,
    /** Connections being watched (for tests and metrics). */
    get size(): number {
      let n = 0;
      for (const set of slots.values()) n += set.size;
      return n;
    },
    close(): void {
      clearInterval(timer);
      slots.clear();
    },
  };
}
