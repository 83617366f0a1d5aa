import { CLOSE, FRAME_ERROR, MAX_ACK_IDS, MESSAGE_ID_PATTERN } from '../../common/src/codes.js';
import type { Connection } from './connection.js';
import { GROUP_PATTERN } from '../../common/src/tokens.js';

export interface FrameHandlers {
  ack(conn: Connection, ids: string[]): boolean;
  /** Resolves with an error code when refused. */
  subscribe(conn: Connection, group: string): Promise<string | undefined>;
  unsubscribe(conn: Connection, group: string): void;
  upstream(conn: Connection, payload: unknown): void;
  /** A fresh token for this connection (answered by the handler: `authed` or an error frame). */
  auth(conn: Connection, token: string): void;
  onBadFrame(reason: string): void;
}

const MAX_BAD_FRAMES = 10;

const errorFrame = (code: string, message: string) => JSON.stringify({ type: 'error', code, message });

/** Parses and dispatches one client frame. Never throws: bad input gets an error frame, repeated bad input a close. */
export function handleClientFrame(conn: Connection, data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean, h: FrameHandlers): void {
  conn.alive = true;
  if (!conn.takeFrameToken()) {
    h.onBadFrame('rate');
    conn.send(errorFrame(FRAME_ERROR.RATE_LIMITED, 'too many frames; slow down'));
    if (++conn.badFrames > MAX_BAD_FRAMES * 2) conn.close(CLOSE.RATE_LIMITED, 'frame rate exceeded');
    return;
  }
  const bad = (reason: string, message: string) => {
    h.onBadFrame(reason);
    conn.send(errorFrame(FRAME_ERROR.BAD_FRAME, message));
    if (++conn.badFrames > MAX_BAD_FRAMES) conn.close(CLOSE.PROTOCOL_ERROR, 'too many malformed frames');
  };
  if (isBinary) return bad('binary', 'binary frames are not supported; send JSON text');
  let frame: { type?: unknown; ids?: unknown; payload?: unknown; group?: unknown; token?: unknown };
  try {
    frame = JSON.parse(data.toString()) as typeof frame;
  } catch {
    return bad('json', 'frame is not valid JSON');
  }
  if (typeof frame !== 'object' || frame === null) return bad('shape', 'frame must be a JSON object with a "type"');
  switch (frame.type) {
    case 'ping':
      conn.send('{"type":"pong"}');
      return;
    case 'ack': {
      const ids = frame.ids;
      if (!Array.isArray(ids) || ids.length === 0 || ids.length > MAX_ACK_IDS || !ids.every((i) => typeof i === 'string' && MESSAGE_ID_PATTERN.test(i))) {
        return bad('ack', `ack.ids must be 1-${MAX_ACK_IDS} message ids`);
      }
      if (!h.ack(conn, ids as string[])) {
        conn.send(JSON.stringify({ type: 'error', code: FRAME_ERROR.ACK_BACKLOG, message: 'acks are backing up; resend these ids later', ids }));
      }
      return;
    }
    case 'upstream': {
      if (frame.payload === undefined) return bad('upstream', 'upstream.payload is required');
      const verdict = conn.takeUpstreamToken();
      if (verdict === 'ok') return h.upstream(conn, frame.payload);
      h.onBadFrame('upstream-rate');
      conn.send(errorFrame(FRAME_ERROR.UPSTREAM_RATE_LIMITED, 'too many upstream frames; this one was dropped'));
      if (verdict === 'close') conn.close(CLOSE.RATE_LIMITED, 'upstream rate exceeded');
      return;
    }
    case 'auth':
      if (typeof frame.token !== 'string' || frame.token === '') return bad('auth', 'auth.token must be a non-empty string');
      h.auth(conn, frame.token);
      return;
    case 'subscribe':
    case 'unsubscribe': {
      const group = frame.group;
      if (typeof group !== 'string' || !GROUP_PATTERN.test(group)) return bad('group', `${frame.type}.group must be 1-128 characters of [A-Za-z0-9._:-]`);
      if (frame.type === 'unsubscribe') {
        h.unsubscribe(conn, group);
        conn.send(`{"type":"unsubscribed","group":"${group}"}`);
        return;
      }
      void h.subscribe(conn, group).then(
        (refused) => {
          if (refused) conn.send(JSON.stringify({ type: 'error', code: refused, message: `cannot subscribe to ${group}`, group }));
          else conn.send(`{"type":"subscribed","group":"${group}"}`);
        },
        () => conn.send(JSON.stringify({ type: 'error', code: 'UNAVAILABLE', message: `cannot subscribe to ${group} now; retry`, group })),
      );
      return;
    }
    default:
      return bad('type', `unknown frame type ${JSON.stringify(frame.type)}`);
  }
}
