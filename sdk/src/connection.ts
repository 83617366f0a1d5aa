import { CLOSE } from '../../protocol/codes.js';
import { CLIENT_FRAME, type ClientFrame } from '../../protocol/frames.js';
import { heartbeatTimings, startHeartbeat, type Heartbeat } from './heartbeat.js';
import { DEFAULTS, type ResolvedOptions } from './options.js';
import { discardSocket, OPEN, openSocket, withToken, type WebSocketLike } from './socket.js';

export type ConnectionOptions = Pick<ResolvedOptions, 'WebSocket' | 'connectTimeoutMs' | 'heartbeatMs' | 'heartbeatTimeoutMs'>;

export interface ConnectionEvents {
  /** A text frame arrived (the heartbeat has already counted it). */
  onText(text: string): void;
  /** The socket closed, or the connection gave up on it (connect timeout, dead heartbeat): handled alike. */
  onClose(code: number, reason: string): void;
}

/**
 * One socket to one node, and the timers that live exactly as long as it: the
 * connect timeout until the socket opens, then the heartbeat. Frames go out
 * only after the server's welcome. After `discard()` nothing calls back.
 */
export class Connection {
  private readonly ws: WebSocketLike;
  private readonly connectTimer: ReturnType<typeof setTimeout>;
  private heartbeat: Heartbeat | undefined;
  private isOpen = false;
  private isWelcomed = false;

  /** Opens the socket; throws when the WebSocket constructor refuses (a blocked URL, for instance). */
  constructor(
    readonly url: string,
    token: string,
    private readonly o: ConnectionOptions,
    private readonly events: ConnectionEvents,
  ) {
    this.ws = openSocket(o.WebSocket, withToken(url, token), {
      onOpen: () => this.onOpen(),
      onText: (text) => {
        this.heartbeat?.received();
        events.onText(text);
      },
      onClose: (code, reason) => events.onClose(code, reason),
    });
    this.connectTimer = setTimeout(() => events.onClose(1006, 'connect timeout'), o.connectTimeoutMs);
  }

  /** The socket opened (the handshake, and so the token, passed). */
  get opened(): boolean {
    return this.isOpen;
  }

  /** The server's welcome arrived: frames may be sent. */
  get welcomed(): boolean {
    return this.isWelcomed;
  }

  /** Takes the welcome: frames may flow, and the heartbeat follows the server's interval (`heartbeatMs`) unless options set one. */
  welcome(serverHeartbeatMs: number | undefined): void {
    this.isWelcomed = true;
    this.startHeartbeat(serverHeartbeatMs);
  }

  /** Sends a text frame; false (nothing sent) before the welcome or once the socket is no longer open. */
  send(text: string): boolean {
    if (!this.isWelcomed || this.ws.readyState !== OPEN) return false;
    this.ws.send(text);
    return true;
  }

  /** Stops the timers and closes the socket if still open; no callback comes after this. */
  discard(code: number, reason: string): void {
    this.heartbeat?.stop();
    this.heartbeat = undefined;
    clearTimeout(this.connectTimer);
    discardSocket(this.ws, code, reason);
  }

  private onOpen(): void {
    this.isOpen = true;
    clearTimeout(this.connectTimer);
    this.startHeartbeat(undefined);
  }

  private startHeartbeat(serverMs: number | undefined): void {
    this.heartbeat?.stop();
    const { intervalMs, timeoutMs } = heartbeatTimings(this.o, serverMs, { heartbeatMs: DEFAULTS.heartbeatMs, graceMs: DEFAULTS.heartbeatGraceMs });
    this.heartbeat = startHeartbeat({
      intervalMs,
      timeoutMs,
      sendPing: () => this.send(JSON.stringify({ type: CLIENT_FRAME.PING } satisfies ClientFrame)),
      onDead: () => this.events.onClose(CLOSE.HEARTBEAT_TIMEOUT, `no frame for ${timeoutMs} ms`),
    });
  }
}
