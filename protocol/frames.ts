/**
 * WebSocket frames (docs/protocol.md): their `type` names, the shapes a
 * client parses, and the builders the pusher sends them with. Clients rely on
 * the exact text, which frames.test.ts pins. Builders write JSON by hand where
 * the fields are known to need no escaping (ids, ISO times, numbers), so hot
 * frames cost one string concatenation; every string that could need escaping
 * goes through JSON.stringify.
 */

/** `type` of the frames the server sends. */
export const SERVER_FRAME = {
  MESSAGE: 'message',
  WELCOME: 'welcome',
  PONG: 'pong',
  SUBSCRIBED: 'subscribed',
  UNSUBSCRIBED: 'unsubscribed',
  ERROR: 'error',
  KICK: 'kick',
  RECONNECT: 'reconnect',
  TOKEN_EXPIRING: 'token-expiring',
  AUTHED: 'authed',
} as const;

/** `type` of the frames a client sends. */
export const CLIENT_FRAME = {
  PING: 'ping',
  ACK: 'ack',
  SUBSCRIBE: 'subscribe',
  UNSUBSCRIBE: 'unsubscribe',
  UPSTREAM: 'upstream',
  AUTH: 'auth',
} as const;

export interface MessageFrame {
  type: typeof SERVER_FRAME.MESSAGE;
  /** Time-sortable id; the same at every redelivery. */
  id: string;
  /** `true`: stored until acked, so it is acked (automatically unless the SDK's `autoAck: false`). */
  persistent: boolean;
  sentAt: string;
  expiresAt: string;
  collapseKey?: string;
  payload: unknown;
}

export interface WelcomeFrame {
  type: typeof SERVER_FRAME.WELCOME;
  nodeId: string;
  connId: string;
  heartbeatMs: number;
}

export interface ErrorFrame {
  type: typeof SERVER_FRAME.ERROR;
  /** One of FRAME_ERROR (codes.ts). */
  code: string;
  message: string;
  /** With ACK_BACKLOG: the ids the server did not take. */
  ids?: string[];
  /** With a refused `subscribe`: its group. */
  group?: string;
}

export interface KickFrame {
  type: typeof SERVER_FRAME.KICK;
  reason: string;
}

export interface ReconnectFrame {
  type: typeof SERVER_FRAME.RECONNECT;
  nodes: string[];
}

/** The token ends at `expiresAt`: send a fresh one in an `auth` frame, or the server closes with 4001. */
export interface TokenExpiringFrame {
  type: typeof SERVER_FRAME.TOKEN_EXPIRING;
  expiresAt: string;
}

/** What a client may send. */
export type ClientFrame =
  | { type: typeof CLIENT_FRAME.PING }
  | { type: typeof CLIENT_FRAME.ACK; ids: string[] }
  | { type: typeof CLIENT_FRAME.SUBSCRIBE | typeof CLIENT_FRAME.UNSUBSCRIBE; group: string }
  | { type: typeof CLIENT_FRAME.UPSTREAM; payload: unknown }
  | { type: typeof CLIENT_FRAME.AUTH; token: string };

/** A message as the pusher holds it: the payload is already JSON text, written as is. */
export interface OutgoingMessage {
  id: string;
  payload: string;
  persistent: boolean;
  createdAt: number;
  expiresAt: number;
  collapseKey?: string | null;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** `message`: built without re-serialising the payload (sent once per delivery, the hot path). */
export function messageFrame(m: OutgoingMessage): string {
  return (
    `{"type":"message","id":"${m.id}","persistent":${m.persistent},"sentAt":"${iso(m.createdAt)}",` +
    `"expiresAt":"${iso(m.expiresAt)}"${m.collapseKey ? `,"collapseKey":${JSON.stringify(m.collapseKey)}` : ''},"payload":${m.payload}}`
  );
}

/** `welcome`: the first frame of every connection. */
export function welcomeFrame(nodeId: string, connId: string, heartbeatMs: number): string {
  return `{"type":"welcome","nodeId":${JSON.stringify(nodeId)},"connId":${JSON.stringify(connId)},"heartbeatMs":${heartbeatMs}}`;
}

const PONG = '{"type":"pong"}';

/** `pong`: the answer to a `ping` frame. */
export function pongFrame(): string {
  return PONG;
}

/** `subscribed`: a `subscribe` was taken. */
export function subscribedFrame(group: string): string {
  return `{"type":"subscribed","group":${JSON.stringify(group)}}`;
}

/** `unsubscribed`: the answer to `unsubscribe`, or sent unasked with a `reason` (a renewed token no longer grants the group). */
export function unsubscribedFrame(group: string, reason?: string): string {
  return reason === undefined ? `{"type":"unsubscribed","group":${JSON.stringify(group)}}` : JSON.stringify({ type: SERVER_FRAME.UNSUBSCRIBED, group, reason });
}

/** `error`: `code` from FRAME_ERROR; `group` with a refused subscribe, `ids` with ACK_BACKLOG. */
export function errorFrame(code: string, message: string, extra?: { group: string } | { ids: string[] }): string {
  return JSON.stringify(extra ? { type: SERVER_FRAME.ERROR, code, message, ...extra } : { type: SERVER_FRAME.ERROR, code, message });
}

/** `kick`: sent just before close 4009. */
export function kickFrame(reason: string): string {
  return JSON.stringify({ type: SERVER_FRAME.KICK, reason });
}

/** `reconnect`: the node drains; go to one of `nodes`. */
export function reconnectFrame(nodes: string[]): string {
  return JSON.stringify({ type: SERVER_FRAME.RECONNECT, nodes });
}

/** `token-expiring`: the connection's token ends at `expiresAt` (ms). */
export function tokenExpiringFrame(expiresAt: number): string {
  return `{"type":"token-expiring","expiresAt":"${iso(expiresAt)}"}`;
}

/** `authed`: an `auth` frame was accepted; the connection now ends at `expiresAt` (ms). */
export function authedFrame(expiresAt: number): string {
  return `{"type":"authed","expiresAt":"${iso(expiresAt)}"}`;
}
