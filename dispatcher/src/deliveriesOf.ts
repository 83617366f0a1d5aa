import type { Delivery } from '../../store/deliveries.js';
import type { IngestRecord } from '../../schemas/types.js';
import { BROADCAST_INBOX } from '../../protocol/tokens.js';

/**
 * The deliveries a slice of push.ingest records stores before it is routed
 * live, so a device that connects at any moment finds each message either in
 * the store or on the live path: persistent unicast per recipient, and a
 * persistent broadcast once, for the app's BROADCAST_INBOX (read by every
 * device on connect). Group messages are live only: membership is a property
 * of connections, not of users. Records seen before (replays) yield the same
 * deliveries again, which the store ignores.
 */
export function deliveriesOf(records: IngestRecord[], now: number): Delivery[] {
  const out: Delivery[] = [];
  for (const r of records) {
    if (!r.persistent || r.expiresAt <= now || r.target === 'GROUP') continue;
    const user = r.target === 'ALL' ? BROADCAST_INBOX : r.user;
    if (user === null) continue;
    out.push({
      app: r.app,
      user,
      m: r.id,
      e: r.expiresAt,
      ...(r.collapseKey ? { k: r.collapseKey } : {}),
      ...(r.taskId ? { t: r.taskId } : {}),
      // The store keeps small payloads with the delivery, so a resume need not read the message.
      p: r.payload,
      c: r.createdAt,
    });
  }
  return out;
}
