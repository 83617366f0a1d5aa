import type { InboxItem, MessageStore } from '../../common/src/messageStore.js';
import type { IngestRecord } from '../../schemas/types.js';
import { BROADCAST_INBOX } from '../../common/src/tokens.js';

/** Appends between compactions of one inbox (expired, duplicate and collapsed items go then). */
const COMPACT_EVERY = 200;
/** Users whose append count is remembered; the oldest are forgotten first. */
const MAX_TRACKED_USERS = 100_000;

/**
 * Adds a batch's persistent unicast records to their users' inboxes before
 * they are routed live, so a device that connects at any moment finds each
 * message either in its inbox or on the live path. The dispatcher is the only
 * writer of an inbox: push.ingest is keyed app|user (app|#all for
 * broadcasts), so one consumer owns an inbox at a time. Group messages are
 * live only: membership is a property of connections, not of users.
 */
export function createInboxAppender(store: MessageStore) {
  const appends = new Map<string, number>();

  /**
   * `seenBefore` are records handled before (replays, a reset consumer group):
   * their inboxes take the compacting path, which merges by id, so an id
   * already in an inbox is not appended twice.
   */
  return async (records: IngestRecord[], now: number, seenBefore: ReadonlySet<IngestRecord> = new Set()): Promise<void> => {
    const byUser = new Map<string, { app: string; user: string; items: InboxItem[]; compact: boolean }>();
    for (const r of records) {
      if (!r.persistent || r.expiresAt <= now || r.target === 'GROUP') continue;
      // A broadcast is stored once, in the app's #all inbox, read by every device on connect.
      const user = r.target === 'ALL' ? BROADCAST_INBOX : r.user;
      if (user === null) continue;
      const key = `${r.app}|${user}`;
      let entry = byUser.get(key);
      if (!entry) byUser.set(key, (entry = { app: r.app, user, items: [], compact: false }));
      if (seenBefore.has(r)) entry.compact = true;
      entry.items.push({ m: r.id, e: r.expiresAt, ...(r.collapseKey ? { k: r.collapseKey } : {}), ...(r.taskId ? { t: r.taskId } : {}) });
    }
    for (const [key, entry] of byUser) {
      const count = (appends.get(key) ?? 0) + entry.items.length;
      appends.delete(key);
      if (count >= COMPACT_EVERY || entry.compact) entry.compact = true;
      else appends.set(key, count);
      if (appends.size > MAX_TRACKED_USERS) appends.delete(appends.keys().next().value!);
    }
    if (byUser.size > 0) await store.appendToInboxes([...byUser.values()]);
  };
}
