import { MESSAGE_ID_PATTERN } from '../../protocol/codes.js';
/** Frames of the WebSocket protocol (docs/protocol.md), as the client sees them. */

export interface MessageFrame {
  type: 'message';
  /** Time-sortable id; the same at every redelivery. */
  id: string;
  /** `true`: stored until acked, so it is acked (automatically unless `autoAck: false`). */
  persistent: boolean;
  sentAt: string;
  expiresAt: string;
  collapseKey?: string;
  payload: unknown;
}

export interface WelcomeFrame {
  type: 'welcome';
  nodeId: string;
  connId: string;
  heartbeatMs: number;
}

export interface ErrorFrame {
  type: 'error';
  code: string;
  message: string;
  /** With ACK_BACKLOG: the ids the server did not take. */
  ids?: string[];
}

export interface KickFrame {
  type: 'kick';
  reason: string;
}

export interface ReconnectFrame {
  type: 'reconnect';
  nodes: string[];
}

/** The token ends at `expiresAt`: send a fresh one in an `auth` frame, or the server closes with 4001. */
export interface TokenExpiringFrame {
  type: 'token-expiring';
  expiresAt: string;
}

export type ServerFrame = MessageFrame | WelcomeFrame | ErrorFrame | KickFrame | ReconnectFrame | TokenExpiringFrame | { type: 'pong' };

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
    case 'message':
      return isString(f.id) && typeof f.persistent === 'boolean' ? (f as unknown as MessageFrame) : undefined;
    case 'welcome':
      return isString(f.nodeId) ? (f as unknown as WelcomeFrame) : undefined;
    case 'error':
      return {
        type: 'error',
        code: isString(f.code) ? f.code : 'UNKNOWN',
        message: isString(f.message) ? f.message : '',
        ...(Array.isArray(f.ids) ? { ids: f.ids.filter((id): id is string => isString(id) && MESSAGE_ID.test(id)) } : {}),
      };
    case 'kick':
      return { type: 'kick', reason: isString(f.reason) ? f.reason : '' };
    case 'reconnect':
      return { type: 'reconnect', nodes: Array.isArray(f.nodes) ? f.nodes.filter(isString) : [] };
    case 'pong':
      return { type: 'pong' };
    case 'token-expiring':
      return { type: 'token-expiring', expiresAt: isString(f.expiresAt) ? f.expiresAt : '' };
    default:
      return undefined;
  }
}
