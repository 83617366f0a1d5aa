/**
 * WebSocket close codes and error-frame codes, shared by the pusher and the
 * SDK. 4000-4999 are ours; the SDK decides from the code whether to reconnect.
 */
export const CLOSE = {
  /** Normal close by either side. */
  NORMAL: 1000,
  /** The server is shutting down or draining: reconnect to another node. */
  GOING_AWAY: 1001,
  /** A frame larger than the server accepts (set by `ws`). */
  TOO_LARGE: 1009,
  /** The server failed while handling a frame of this connection (a bug, logged and counted). Reconnect with backoff. */
  INTERNAL_ERROR: 1011,
  /** The token expired during the session: fetch a new one, then reconnect. */
  TOKEN_EXPIRED: 4001,
  /** Too many malformed frames. Do not reconnect without a fix. */
  PROTOCOL_ERROR: 4002,
  /** The client did not answer pings in time. Reconnect. */
  HEARTBEAT_TIMEOUT: 4004,
  /** The client read too slowly and its send queue overflowed. Reconnect. */
  SLOW_CONSUMER: 4008,
  /** Kicked by an operator or by a newer login (`single` device mode). Do not reconnect. */
  KICKED: 4009,
  /** Too many frames per second, even after warnings. Reconnect after a pause. */
  RATE_LIMITED: 4029,
  /** Unexpected server error. Reconnect with backoff. */
  SERVER_ERROR: 4500,
} as const;

export type CloseCode = (typeof CLOSE)[keyof typeof CLOSE];

/** Close codes after which a client must not reconnect on its own. */
export const NO_RECONNECT_CODES: readonly number[] = [CLOSE.PROTOCOL_ERROR, CLOSE.KICKED];

/** `code` of `{ "type": "error" }` frames. */
export const FRAME_ERROR = {
  BAD_FRAME: 'BAD_FRAME',
  RATE_LIMITED: 'RATE_LIMITED',
  TOO_LARGE: 'TOO_LARGE',
  NOT_AVAILABLE: 'NOT_AVAILABLE',
  /** A `subscribe` could not be recorded now (Redis unavailable); the frame carries `group`. Retry later. */
  UNAVAILABLE: 'UNAVAILABLE',
  /** The token does not grant this group and the app's groups are not open. */
  GROUP_FORBIDDEN: 'GROUP_FORBIDDEN',
  /** The connection already holds the maximum number of subscriptions. */
  TOO_MANY_GROUPS: 'TOO_MANY_GROUPS',
  /** The node's ack queue is full; the frame's `ids` were not taken. Resend them later. */
  ACK_BACKLOG: 'ACK_BACKLOG',
  /** The connection sent upstream frames faster than its upstream rate; this one was dropped. */
  UPSTREAM_RATE_LIMITED: 'UPSTREAM_RATE_LIMITED',
  /** The upstream payload was not published to Kafka; resend later. */
  UPSTREAM_UNAVAILABLE: 'UPSTREAM_UNAVAILABLE',
  /** The node's upstream queue to Kafka is full (its byte budget): this frame was not taken. Resend it later. */
  UPSTREAM_BACKLOG: 'UPSTREAM_BACKLOG',
  /** An `auth` frame's token was refused (bad signature, expired, or for another user, device or app). */
  TOKEN_REFUSED: 'TOKEN_REFUSED',
} as const;

/** Message ids as they appear in frames (time-sortable, 26 characters). */
export const MESSAGE_ID_PATTERN = /^[0-9A-Z]{26}$/;

/** Ids one `ack` frame may carry. */
export const MAX_ACK_IDS = 500;
