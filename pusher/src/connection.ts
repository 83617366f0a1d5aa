import type { WebSocket } from 'ws';
import { CLOSE } from '../../protocol/codes.js';
import { userRecordKey } from '../../protocol/recordKeys.js';
import { socketOf, writeFrame, type WireFrame } from '../../platform/patches/wireFrame.js';
import { closeReason } from './closeReason.js';

/** How long ids sent on resume are remembered to skip their live copies. */
const RESUMED_GRACE_MS = 10_000;
/** Upstream refusals are counted over this window; `upstreamMaxRefused` within it closes the socket. */
export const UPSTREAM_REFUSAL_WINDOW_MS = 10_000;

export interface ConnectionLimits {
  maxBufferedBytes: number;
  frameRate: number;
  maxPendingLive: number;
  upstreamRate: number;
  upstreamBurst: number;
  upstreamMaxRefused: number;
  /** Coalesce a connection's frames written in one event-loop turn into one socket write (default on). */
  coalesce?: boolean;
  /** Delivered, unacked persistent ids remembered per connection (PUSHER_MAX_UNACKED); default 10000. */
  maxUnackedPerConnection?: number;
}

/**
 * Frame coalescing. The first write to a socket in a turn goes out at once
 * (a broadcast costs one write per socket, as before); a second write in
 * the same turn corks the socket, and every corked socket is uncorked when
 * the turn ends (setImmediate), so a burst of N frames costs two writes
 * instead of N. Each message is still its own WebSocket frame.
 */
let turn = 1;
let turnEndScheduled = false;
const corkedConnections: Connection[] = [];
/** Bytes one corked socket may hold back before it is flushed within the turn: the slow-consumer cut-off counts them. */
const MAX_CORKED_BYTES = 64 * 1024;

function endTurn(): void {
  turn++;
  turnEndScheduled = false;
  for (const conn of corkedConnections) conn.flushWrites();
  corkedConnections.length = 0;
}

/**
 * One client socket. Kept small on purpose: a node holds hundreds of
 * thousands of these, so per-connection state is a few fields, and the
 * resume buffers exist only while offline messages are loading.
 */
export class Connection {
  /** Live message frames that arrived while offline messages were loading (id, frame). */
  pending: [string, string | WireFrame][] | undefined = [];
  /** Ids sent from the offline store during resume (and a grace period after), to skip their live copies. */
  resumed: Set<string> | undefined = new Set();
  alive = true;
  closed = false;
  /** The close code this server chose, when it closed the connection. */
  closeCode: number | undefined;
  badFrames = 0;
  /** Ack ids this connection sent for messages it was never given (dropped; see clientFrames.ts). */
  unknownAcks = 0;
  /**
   * Persistent ids written to this socket and not acked yet, with their
   * message's expiry (an ack is kept as long as its message): the only ids
   * its acks may name. Created on the first persistent delivery, dropped when
   * empty; insertion-ordered, so past the cap the oldest is forgotten (its
   * ack is then dropped and the message comes again on the next connect).
   */
  private delivered: Map<string, number> | undefined;
  /** Groups this connection subscribed to (created on first subscribe). */
  groups: Set<string> | undefined;
  /** When the token expires (ms since epoch); an `auth` frame with a fresh token moves it. */
  tokenExpiresAt = 0;
  /** Whether the `token-expiring` frame went out for the current token. */
  tokenWarned = false;
  /** The second of the token clock this connection waits in (see tokenClock.ts). */
  clockSlot: number | undefined;
  /** Presence epoch of this connection (presence.ts); 0 until its ONLINE is due, or if it could not get one. */
  presenceEpoch = 0;
  private tokens: number;
  private refilledAt = Date.now();
  private upstreamTokens: number;
  private upstreamRefilledAt = Date.now();
  private upstreamRefused = 0;
  private upstreamRefusedSince = 0;
  /** The coalescing turn of this connection's last write, and whether its socket is corked now. */
  private writeTurn = 0;
  private corked = false;

  constructor(
    readonly ws: WebSocket,
    readonly id: string,
    readonly app: string,
    readonly user: string,
    readonly device: string,
    /** What the token and the app allow: `open` means any group. A fresh token may replace the list. */
    public groupGrants: string[] | 'open',
    private readonly limits: ConnectionLimits,
  ) {
    this.tokens = limits.frameRate * 2;
    this.upstreamTokens = limits.upstreamBurst;
  }

  get userKey(): string {
    return userRecordKey(this.app, this.user);
  }

  get resuming(): boolean {
    return this.pending !== undefined;
  }

  /**
   * Writes a frame unless the client is too far behind, in which case it is
   * cut off (4008) rather than allowed to grow this process's memory.
   * Returns false when the frame was not written. A `WireFrame` (built once
   * for every socket a message goes to) is written as is; a string is framed
   * by `ws`. `onFlushed` (string frames only) is called once the frame left
   * for the kernel, or with an error if the socket went away first.
   */
  send(frame: string | WireFrame, onFlushed?: (err?: Error | null) => void): boolean {
    if (this.closed) return false;
    const ws = this.ws;
    if (ws.bufferedAmount > this.limits.maxBufferedBytes) {
      this.close(CLOSE.SLOW_CONSUMER, 'slow consumer: send queue full');
      return false;
    }
    if (this.limits.coalesce !== false) this.beforeWrite();
    if (typeof frame === 'string') ws.send(frame, onFlushed);
    else writeFrame(ws, frame);
    if (this.corked && ws.bufferedAmount >= MAX_CORKED_BYTES) this.flushWrites();
    return true;
  }

  private beforeWrite(): void {
    if (this.corked) return;
    if (this.writeTurn !== turn) {
      this.writeTurn = turn;
      if (!turnEndScheduled) {
        turnEndScheduled = true;
        setImmediate(endTurn);
      }
      return;
    }
    const socket = socketOf(this.ws);
    if (!socket) return;
    socket.cork();
    this.corked = true;
    corkedConnections.push(this);
  }

  /** Uncorks this connection's socket: what was written this turn goes out in one write. */
  flushWrites(): void {
    if (!this.corked) return;
    this.corked = false;
    socketOf(this.ws)?.uncork();
  }

  /** Delivers a live message, or holds it until the resume finishes. False if dropped. */
  deliverLive(id: string, frame: string | WireFrame): boolean {
    if (this.resumed?.has(id)) return true; // already sent from the store
    if (this.pending) {
      if (this.pending.length >= this.limits.maxPendingLive) {
        this.close(CLOSE.SLOW_CONSUMER, 'slow consumer: too many messages during resume');
        return false;
      }
      this.pending.push([id, frame]);
      return true;
    }
    return this.send(frame);
  }

  /**
   * Enters the resume phase again (a catch-up read of the store): live messages are held
   * until finishResume(), and ids sent from the store meanwhile are skipped on the live path.
   * False when a resume is already running.
   */
  beginResume(): boolean {
    if (this.pending) return false;
    this.pending = [];
    this.resumed ??= new Set();
    return true;
  }

  /** Ends the resume phase: sends held live messages not already sent from the store. */
  finishResume(): void {
    const pending = this.pending ?? [];
    const resumed = this.resumed;
    this.pending = undefined;
    for (const [id, frame] of pending) if (!resumed?.has(id)) this.send(frame);
    // A message read from the store may still be on its way on the live path
    // (it was stored just before the read): remember what was sent a little longer.
    if (resumed && resumed.size > 0) setTimeout(() => (this.resumed = undefined), RESUMED_GRACE_MS).unref();
    else this.resumed = undefined;
  }

  /** Remembers that persistent message `id` was (or is about to be) written to this socket, so its ack is taken. */
  noteDelivered(id: string, expiresAt: number): void {
    const map = (this.delivered ??= new Map());
    map.delete(id); // a redelivered id counts as the newest
    map.set(id, expiresAt);
    if (map.size > (this.limits.maxUnackedPerConnection ?? 10_000)) map.delete(map.keys().next().value!);
  }

  /** The expiry of a delivered, unacked message (ms since epoch), or undefined. */
  expiryOf(id: string): number | undefined {
    return this.delivered?.get(id);
  }

  /** The ids among `ids` that were delivered on this connection and not acked yet. */
  deliveredAmong(ids: string[]): string[] {
    const set = this.delivered;
    return set ? ids.filter((id) => set.has(id)) : [];
  }

  /** Forgets acked ids (an ack repeated later is unknown). */
  forgetDelivered(ids: string[]): void {
    const set = this.delivered;
    if (!set) return;
    for (const id of ids) set.delete(id);
    if (set.size === 0) this.delivered = undefined;
  }

  /** Token bucket for client frames. */
  takeFrameToken(): boolean {
    const now = Date.now();
    this.tokens = Math.min(this.limits.frameRate * 2, this.tokens + ((now - this.refilledAt) / 1000) * this.limits.frameRate);
    this.refilledAt = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /**
   * Token bucket for upstream frames, separate from the frame rate: upstream
   * costs a Kafka record, so it gets a tighter budget. `'ok'` takes a token;
   * `'refused'` drops the frame; `'close'` means the client kept flooding
   * (more than `upstreamMaxRefused` refusals within 10 s).
   */
  takeUpstreamToken(): 'ok' | 'refused' | 'close' {
    const now = Date.now();
    const { upstreamRate, upstreamBurst, upstreamMaxRefused } = this.limits;
    this.upstreamTokens = Math.min(upstreamBurst, this.upstreamTokens + ((now - this.upstreamRefilledAt) / 1000) * upstreamRate);
    this.upstreamRefilledAt = now;
    if (this.upstreamTokens >= 1) {
      this.upstreamTokens -= 1;
      return 'ok';
    }
    if (now - this.upstreamRefusedSince > UPSTREAM_REFUSAL_WINDOW_MS) {
      this.upstreamRefusedSince = now;
      this.upstreamRefused = 0;
    }
    return ++this.upstreamRefused > upstreamMaxRefused ? 'close' : 'refused';
  }

  close(code: number, reason: string): void {
    if (this.closed) return;
    this.closed = true;
    this.closeCode = code;
    try {
      // Reasons may come from outside (a kick's): ws throws on one over 123 bytes.
      this.ws.close(code, closeReason(reason));
    } catch {
      this.ws.terminate();
    }
    // A client that does not complete the closing handshake is dropped.
    setTimeout(() => this.ws.terminate(), 2000).unref();
  }
}

/** Whether a token's grants allow joining `group` (`name`, `prefix*` or `*`). */
export function mayJoin(grants: string[] | 'open', group: string): boolean {
  if (grants === 'open') return true;
  return grants.some((g) => (g.endsWith('*') ? group.startsWith(g.slice(0, -1)) : g === group));
}
