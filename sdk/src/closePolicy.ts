import { CLOSE, NO_RECONNECT_CODES } from '../../protocol/codes.js';
import type { SessionVerdict } from './sessionCheck.js';

/** What the client does after its socket closed (or it gave up on the socket). */
export type CloseAction =
  /** A code after which the client must not come back (protocol error, kicked): it stops. */
  | { kind: 'stop' }
  /** The socket never opened: only the node can tell whether the token is why, so ask it (`checkSession`) first. */
  | { kind: 'check-session' }
  /**
   * An established connection dropped: reconnect, renewing the token first
   * when the server closed for its expiry, and starting with the next node
   * when this one is going away (it will not take us back).
   */
  | { kind: 'reconnect'; tokenExpired: boolean; nextNode: boolean };

export function afterClose(code: number, opened: boolean): CloseAction {
  if (NO_RECONNECT_CODES.includes(code)) return { kind: 'stop' };
  if (!opened) return { kind: 'check-session' };
  return { kind: 'reconnect', tokenExpired: code === CLOSE.TOKEN_EXPIRED, nextNode: code === CLOSE.GOING_AWAY };
}

/** What the client does after a socket that never opened, given the node's verdict on the token. */
export type FailedOpenAction =
  /** The token expired and `getToken` can renew it: retry with a new one. */
  | { kind: 'renew-token' }
  /** The token is refused, or expired with nothing to renew it: retrying cannot help, the client stops. */
  | { kind: 'refused'; code: string; message: string }
  /** Not the token, as far as anyone can tell: retry on the next node. */
  | { kind: 'next-node' };

export function afterFailedOpen(verdict: SessionVerdict, canRefresh: boolean): FailedOpenAction {
  if (verdict.kind === 'expired' && canRefresh) return { kind: 'renew-token' };
  if (verdict.kind === 'expired') return { kind: 'refused', code: 'TOKEN_EXPIRED', message: 'token expired and no getToken option to renew it' };
  if (verdict.kind === 'refused') return { kind: 'refused', code: verdict.code, message: verdict.message };
  return { kind: 'next-node' };
}
