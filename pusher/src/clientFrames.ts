import { CLOSE, FRAME_ERROR, MAX_ACK_IDS, MESSAGE_ID_PATTERN } from '../../protocol/codes.js';
import type { Connection } from './connection.js';
import { GROUP_PATTERN } from '../../protocol/tokens.js';
import { CLIENT_FRAME, errorFrame, pongFrame, subscribedFrame, unsubscribedFrame } from '../../protocol/frames.js';
import { exceedsDepth } from './frameDepth.js';

export interface FrameLimits {
  /** Deepest array/object nesting of a frame (PUSHER_MAX_FRAME_DEPTH). */
  maxFrameDepth: number;
  /** Bad frames before close 4002; twice this many rate offences close with 4029 (PUSHER_MAX_BAD_FRAMES). */
  maxBadFrames: number;
  /** Ack ids of undelivered messages dropped quietly before each such ack frame is a bad frame (PUSHER_MAX_UNKNOWN_ACKS). */
  maxUnknownAcks: number;
}

export interface FrameHandlers {
  limits: FrameLimits;
  /** Acks ids that were delivered on this connection; false when the ack queue refused them. */
  ack(conn: Connection, ids: string[]): boolean;
  /** Resolves with an error code when refused. */
  subscribe(conn: Connection, group: string): Promise<string | undefined>;
  unsubscribe(conn: Connection, group: string): void;
  upstream(conn: Connection, payload: unknown): void;
  /** A fresh token for this connection (answered by the handler: `authed` or an error frame). */
  auth(conn: Connection, token: string): void;
  onBadFrame(reason: string): void;
  /** Ack ids dropped because they were never delivered on that connection. */
  onUnknownAcks(count: number): void;
  /** A handler threw: a bug, never the client's fault. Logged and counted; the connection is closed with 1011. */
  onFrameError(conn: Connection, err: unknown): void;
}

/** A frame over the rate: refused before any parsing; too many offences close the socket. */
function rateOffence(conn: Connection, h: FrameHandlers): void {
  h.onBadFrame('rate');
  conn.send(errorFrame(FRAME_ERROR.RATE_LIMITED, 'too many frames; slow down'));
  if (++conn.badFrames > h.limits.maxBadFrames * 2) conn.close(CLOSE.RATE_LIMITED, 'frame rate exceeded');
}

/**
 * A protocol-level ping or pong from the client. ws answers pings itself, so
 * without this a client could make the node write a pong per frame at any
 * rate: control frames take from the same frame budget as data frames.
 */
export function handleControlFrame(conn: Connection, h: FrameHandlers): void {
  try {
    conn.alive = true;
    if (!conn.takeFrameToken()) rateOffence(conn, h);
  } catch (err) {
    h.onFrameError(conn, err);
    conn.close(CLOSE.INTERNAL_ERROR, 'internal error');
  }
}

/**
 * Parses and dispatches one client frame. Never throws: bad input gets an
 * error frame, repeated bad input a close, and a throw from a handler (a bug)
 * is contained here, because ws calls this inside its event emit, where an
 * exception would end the process and every other connection with it.
 */
export function handleClientFrame(conn: Connection, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean, h: FrameHandlers): void {
  try {
    dispatch(conn, data, isBinary, h);
  } catch (err) {
    h.onFrameError(conn, err);
    conn.close(CLOSE.INTERNAL_ERROR, 'internal error');
  }
}

function dispatch(conn: Connection, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean, h: FrameHandlers): void {
  conn.alive = true;
  if (!conn.takeFrameToken()) return rateOffence(conn, h);
  const bad = (reason: string, message: string) => {
    h.onBadFrame(reason);
    conn.send(errorFrame(FRAME_ERROR.BAD_FRAME, message));
    if (++conn.badFrames > h.limits.maxBadFrames) conn.close(CLOSE.PROTOCOL_ERROR, 'too many malformed frames');
  };
  if (isBinary) return bad('binary', 'binary frames are not supported; send JSON text');
  const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
  // Before JSON.parse: a frame nested deeper than anything we serve is refused unparsed.
  if (exceedsDepth(bytes, h.limits.maxFrameDepth)) return bad('depth', `frame nests deeper than ${h.limits.maxFrameDepth} levels`);
  let frame: { type?: unknown; ids?: unknown; payload?: unknown; group?: unknown; token?: unknown };
  try {
    frame = JSON.parse(bytes.toString()) as typeof frame;
  } catch {
    return bad('json', 'frame is not valid JSON');
  }
  if (typeof frame !== 'object' || frame === null || Array.isArray(frame)) return bad('shape', 'frame must be a JSON object with a "type"');
  switch (frame.type) {
    case CLIENT_FRAME.PING:
      conn.send(pongFrame());
      return;
    case CLIENT_FRAME.ACK: {
      const ids = frame.ids;
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_ACK_IDS || !ids.every((i) => typeof i === 'string' && MESSAGE_ID_PATTERN.test(i))) {
        return bad('ack', `ack.ids must be 1-${MAX_ACK_IDS} message ids`);
      }
      return ack(conn, ids as string[], h, bad);
    }
    case CLIENT_FRAME.UPSTREAM: {
      if (frame.payload === undefined) return bad('upstream', 'upstream.payload is required');
      const verdict = conn.takeUpstreamToken();
      if (verdict === 'ok') return h.upstream(conn, frame.payload);
      h.onBadFrame('upstream-rate');
      conn.send(errorFrame(FRAME_ERROR.UPSTREAM_RATE_LIMITED, 'too many upstream frames; this one was dropped'));
      if (verdict === 'close') conn.close(CLOSE.RATE_LIMITED, 'upstream rate exceeded');
      return;
    }
    case CLIENT_FRAME.AUTH:
      if (typeof frame.token !== 'string' || frame.token === '') return bad('auth', 'auth.token must be a non-empty string');
      h.auth(conn, frame.token);
      return;
    case CLIENT_FRAME.SUBSCRIBE:
    case CLIENT_FRAME.UNSUBSCRIBE: {
      const group = frame.group;
      if (typeof group !== 'string' || !GROUP_PATTERN.test(group)) return bad('group', `${frame.type}.group must be 1-128 characters of [A-Za-z0-9._:-]`);
      if (frame.type === CLIENT_FRAME.UNSUBSCRIBE) {
        h.unsubscribe(conn, group);
        conn.send(unsubscribedFrame(group));
        return;
      }
      void h.subscribe(conn, group).then(
        (refused) => {
          if (refused) conn.send(errorFrame(refused, `cannot subscribe to ${group}`, { group }));
          else conn.send(subscribedFrame(group));
        },
        () => conn.send(errorFrame(FRAME_ERROR.UNAVAILABLE, `cannot subscribe to ${group} now; retry`, { group })),
      );
      return;
    }
    default:
      // Echo a short string type only: the client's value could be anything, of any size.
      return bad(
        'type',
        typeof frame.type === 'string' && frame.type.length <= 64 ? `unknown frame type ${JSON.stringify(frame.type)}` : 'unknown or missing frame type',
      );
  }
}

/**
 * Takes the ids this connection was sent (persistent, not yet acked) and drops
 * the rest without touching Redis, MongoDB or the ack queue: an ack is the
 * client's word, and only a message it was given is its to acknowledge.
 * A trickle of unknown ids is normal (an ack resent after a reconnect, a
 * duplicate); past `maxUnknownAcks` each frame carrying them is a bad frame.
 */
function ack(conn: Connection, ids: string[], h: FrameHandlers, bad: (reason: string, message: string) => void): void {
  const known = conn.deliveredAmong(ids);
  const unknown = ids.length - known.length;
  if (unknown > 0) {
    h.onUnknownAcks(unknown);
    conn.unknownAcks += unknown;
    if (conn.unknownAcks > h.limits.maxUnknownAcks) bad('ack-unknown', 'ack.ids name messages that were not delivered on this connection');
  }
  if (known.length === 0) return;
  if (!h.ack(conn, known)) {
    // Still deliverable: the ids stay known, so the client's resend is taken.
    conn.send(errorFrame(FRAME_ERROR.ACK_BACKLOG, 'acks are backing up; resend these ids later', { ids: known }));
    return;
  }
  conn.forgetDelivered(known);
}
