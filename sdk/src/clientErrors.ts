/**
 * Codes of `error` events raised by the client itself. Server error frames
 * keep their own codes (`FRAME_ERROR` in protocol/codes.ts).
 */
export const CLIENT_ERROR = {
  /** The token was refused (invalid, missing, or expired with no `getToken`). The client is closed. */
  AUTH_REFUSED: 'AUTH_REFUSED',
  /** `getToken` threw or returned no token. The client retries with backoff. */
  TOKEN_REFRESH_FAILED: 'TOKEN_REFRESH_FAILED',
  /** A `message` listener threw or rejected. The message is not acked and is taken again when redelivered. */
  HANDLER_FAILED: 'HANDLER_FAILED',
  /** The server closed with a code after which the client must not reconnect (e.g. 4002). The client is closed. */
  CLOSED_BY_SERVER: 'CLOSED_BY_SERVER',
} as const;

/** The text of something caught, for an `error` event's message. */
export function errorText(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}
