import type { Connection } from './connection.js';
import { socketOf } from '../../platform/patches/wireFrame.js';

/** How often a wait for the socket re-checks, in case a partial drain brings it under the mark without a 'drain' event. */
const RECHECK_MS = 200;

/**
 * Resolves once the connection's unsent bytes are at most `highWater`, or it
 * closed. A slow client is waited for, not cut off: the heartbeat still drops
 * one that stops reading altogether (its pong waits behind the backlog).
 */
export function untilWritable(conn: Connection, highWater: number): Promise<void> {
  const socket = socketOf(conn.ws);
  if (!socket || conn.closed || conn.ws.bufferedAmount <= highWater) return Promise.resolve();
  // What this turn corked goes out now rather than at the end of the turn.
  conn.flushWrites();
  return new Promise<void>((resolve) => {
    const check = () => {
      if (conn.closed || conn.ws.bufferedAmount <= highWater) finish();
    };
    const finish = () => {
      clearInterval(timer);
      socket.off('drain', check);
      conn.ws.off('close', finish);
      resolve();
    };
    const timer = setInterval(check, RECHECK_MS);
    socket.on('drain', check);
    conn.ws.on('close', finish);
  });
}

/**
 * Writes one page of stored messages as the socket drains: a frame is
 * written only while at most `highWater` bytes wait to be sent, so a large
 * resume to a slow link is paced by the link instead of tripping the
 * slow-consumer cut-off (4008). Resolves with the ids that reached the kernel,
 * in order: only those count as a delivery attempt (an id never written must
 * not bring its message closer to being parked).
 */
export async function writeResumed(
  conn: Connection,
  page: { id: string; frame: string }[],
  highWater: number,
  onWritten: (id: string) => void,
): Promise<string[]> {
  const flushed: Promise<string | undefined>[] = [];
  for (const { id, frame } of page) {
    if (conn.ws.bufferedAmount > highWater) await untilWritable(conn, highWater);
    if (conn.closed) break;
    // Before the write: a live copy arriving meanwhile is skipped.
    conn.resumed?.add(id);
    let settle!: (id: string | undefined) => void;
    const done = new Promise<string | undefined>((resolve) => (settle = resolve));
    if (!conn.send(frame, (err) => settle(err ? undefined : id))) break;
    onWritten(id);
    flushed.push(done);
  }
  // Waits for the page to leave (the socket drained) before the next one is read.
  return (await Promise.all(flushed)).filter((id): id is string => id !== undefined);
}
