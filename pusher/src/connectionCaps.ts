import type { Connection } from './connection.js';
import type { ConnectionTable } from './connectionTable.js';

export interface ConnectionCaps {
  /** Open sockets per (app, user, device) on this node (PUSHER_MAX_SOCKETS_PER_DEVICE). */
  maxSocketsPerDevice: number;
  /** Open sockets per (app, user) on this node (PUSHER_MAX_SOCKETS_PER_USER). */
  maxSocketsPerUser: number;
}

export type CapVerdict = { ok: true; replace: Connection[] } | { ok: false };

/**
 * Whether a new socket of (app, user, device) may open on this node, and
 * which of the device's sockets it replaces. A device over its cap is almost
 * always a client that reconnected before the server noticed the old socket
 * die, so the newest wins and the oldest go (closed by the caller). A user
 * over its cap with a new device is refused instead: closing another device's
 * socket would let one device push the others off.
 * Sockets already closing (still in the table until their close event) do not count.
 */
export function checkConnectionCaps(table: ConnectionTable, app: string, user: string, device: string, caps: ConnectionCaps): CapVerdict {
  const open: Connection[] = [];
  for (const c of table.forUser(app, user) ?? []) if (!c.closed) open.push(c);
  const sameDevice = open.filter((c) => c.device === device); // insertion order: oldest first
  const replace = sameDevice.slice(0, Math.max(0, sameDevice.length - caps.maxSocketsPerDevice + 1));
  if (open.length - replace.length >= caps.maxSocketsPerUser) return { ok: false };
  return { ok: true, replace };
}
