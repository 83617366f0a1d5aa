import { MESSAGE_ID_PATTERN } from '../../protocol/codes.js';
import {
  SERVER_FRAME,
  type ErrorFrame,
  type KickFrame,
  type MessageFrame,
  type ReconnectFrame,
  type TokenExpiringFrame,
  type WelcomeFrame,
} from '../../protocol/frames.js';

/** Frames of the WebSocket protocol (protocol/frames.ts, docs/protocol.md), as the client sees them. */
export type { ErrorFrame, KickFrame, MessageFrame, ReconnectFrame, TokenExpiringFrame, WelcomeFrame };

export type ServerFrame = MessageFrame | WelcomeFrame | ErrorFrame | KickFrame | ReconnectFrame | TokenExpiringFrame | { type: typeof SERVER_FRAME.PONG };

/** Message ids as the server accepts them in `ack` frames; anything else would get the whole frame refused. */
export const MESSAGE_ID = MESSAGE_ID_PATTERN;

const isString = (v: unknown): v is string => typeof v === 'string';

/** Parses a text frame; returns undefined for anything the client does not understand (it is ignored). */
export function parseServerFrame(text: string): ServerFrame | undefined {
  let f: Record<string, unknown>;
  try {
    f = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (typeof f !== 'object' || f === null) return undefined;
  switch (f.type) {
    case SERVER_FRAME.MESSAGE:
      return isString(f.id) && typeof f.persistent === 'boolean' ? (f as unknown as MessageFrame) : undefined;
    case SERVER_FRAME.WELCOME:
      return isString(f.nodeId) ? (f as unknown as WelcomeFrame) : undefined;
    case SERVER_FRAME.ERROR:
      return {
        type: SERVER_FRAME.ERROR,
        code: isString(f.code) ? f.code : 'UNKNOWN',
        message: isString(f.message) ? f.message : '',
        ...(Array.isArray(f.ids) ? { ids: f.ids.filter((id): id is string => isString(id) && MESSAGE_ID.test(id)) } : {}),
      };
    case SERVER_FRAME.KICK:
      return { type: SERVER_FRAME.KICK, reason: isString(f.reason) ? f.reason : '' };
    case SERVER_FRAME.RECONNECT:
      return { type: SERVER_FRAME.RECONNECT, nodes: Array.isArray(f.nodes) ? f.nodes.filter(isString) : [] };
    case SERVER_FRAME.PONG:
      return { type: SERVER_FRAME.PONG };
    case SERVER_FRAME.TOKEN_EXPIRING:
      return { type: SERVER_FRAME.TOKEN_EXPIRING, expiresAt: isString(f.expiresAt) ? f.expiresAt : '' };
    default:
      return undefined;
  }
}
