/**
 * Document keys of the delivery collections, built here only. Ids and users
 * are joined with `|`: user and device ids are [A-Za-z0-9._-] plus the
 * broadcast "user" BROADCAST_INBOX, message ids are [0-9A-Z], so no key is
 * ambiguous.
 */

/** A user's deliveries (`deliveries.u`). */
export const userKey = (app: string, user: string) => `${app}|${user}`;
/** A device's acks and attempts (`acks.d`, `attempts.d`). */
export const deviceKey = (app: string, user: string, device: string) => `${app}|${user}|${device}`;
/** One delivery: (app, user, message). */
export const deliveryId = (app: string, user: string, msgId: string) => `${app}|${user}|${msgId}`;
/** One ack: (app, user, device, message). */
export const ackId = (app: string, user: string, device: string, msgId: string) => `${deviceKey(app, user, device)}|${msgId}`;
/** One delivery attempt on connect: (app, user, device, message, attempt number from 1). */
export const attemptId = (app: string, user: string, device: string, msgId: string, attempt: number) => `${deviceKey(app, user, device)}|${msgId}|${attempt}`;
