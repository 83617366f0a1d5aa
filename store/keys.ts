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
/**
 * One delivery attempt on connect: (app, user, message, device, connection). Keyed by the
 * connection, not by a number counted at read: the attempts of a closing connection may still
 * be written after the next connection of the device read the count, and must not collide.
 * A connection id is 8 base64url characters, so it is never `ack`.
 */
export const attemptId = (app: string, user: string, device: string, msgId: string, connId: string) => `${deliveryId(app, user, msgId)}|${device}|${connId}`;

/*
 * Redis keys of the delivery hot index (store/hotIndex.ts), under the app's REDIS_KEY_PREFIX
 * (ioredis keyPrefix). The user key sits in a hash tag, so a user's two keys share one slot.
 */

/** A user's hot index: a hash of its deliveries', acks' and attempts' `_id` -> record (JSON), plus HOT_SENTINEL. */
export const hotIndexKey = (u: string) => `push:hot:{${u}}`;
/** A user's index version: bumped after every MongoDB write or delete of the user's records. */
export const hotVersionKey = (u: string) => `push:hotv:{${u}}`;
/** The field every installed index holds, so a user with no records still has one. */
export const HOT_SENTINEL = '_';
