/**
 * Document keys of the `deliveries` collection, built here only. Parts are
 * joined with `|`: app, user and device ids never contain one (ID_PATTERN; the
 * broadcast "user" is BROADCAST_INBOX), message ids are [0-9A-Z], so no key is
 * ambiguous and a delivery, an ack and an attempt never share an `_id`.
 */

/** A user's documents (`deliveries.u`, indexed). */
export const userKey = (app: string, user: string) => `${app}|${user}`;
/** One delivery: (app, user, message). */
export const deliveryId = (app: string, user: string, msgId: string) => `${app}|${user}|${msgId}`;
/** One ack: (app, user, message, device). */
export const ackId = (app: string, user: string, device: string, msgId: string) => `${deliveryId(app, user, msgId)}|${device}|ack`;
/** One delivery attempt on connect: (app, user, message, device, attempt number from 1). */
export const attemptId = (app: string, user: string, device: string, msgId: string, attempt: number) => `${deliveryId(app, user, msgId)}|${device}|${attempt}`;
