import { BROADCAST_INBOX } from './tokens.js';

/**
 * Kafka record keys of the records the services write (push.ingest,
 * push.node.<id>, push.upstream, push.presence, push.acks). A key picks the
 * partition, so it decides what stays in order: one user's records
 * (`<app>|<user>`), one group's (`<app>|#g:<group>`), one app's broadcasts
 * (`<app>|#all`). User ids never hold `|` nor start with `#` (ID_PATTERN), so
 * a user's key never equals a group's or the app's.
 */

/** Who one record is for; `user` when `target` is USER, `group` when GROUP. */
export interface RecordRecipient {
  target: 'USER' | 'GROUP' | 'ALL';
  user?: string | null;
  group?: string | null;
}

/** Prefix of a group in a key (`#g:<group>`). */
export const GROUP_RECIPIENT_PREFIX = '#g:';

/** The recipient part of a key: the user id, `#g:<group>` or `#all` (also the trace report's recipient field). */
export function recipientOf(r: RecordRecipient): string {
  if (r.target === 'USER') return r.user ?? '';
  return r.target === 'GROUP' ? `${GROUP_RECIPIENT_PREFIX}${r.group ?? ''}` : BROADCAST_INBOX;
}

/** The key of a record for one user (every per-user record: ingest, node, upstream, presence, acks). */
export function userRecordKey(app: string, user: string): string {
  return `${app}|${user}`;
}

/** The key of an ingest or node record: `<app>|<user>`, `<app>|#g:<group>` or `<app>|#all`. */
export function recordKey(app: string, r: RecordRecipient): string {
  return `${app}|${recipientOf(r)}`;
}
