import { CLOSE } from '../../protocol/codes.js';
import { CLIENT_FRAME, type ClientFrame } from '../../protocol/frames.js';
import { CLIENT_ERROR, errorText } from './clientErrors.js';
import { afterClose, afterFailedOpen } from './closePolicy.js';
import { Connection } from './connection.js';
import type { ClientState, PushEvents } from './events.js';
import type { WelcomeFrame } from './frames.js';
import { createNodeList, type NodeList } from './nodeList.js';
import type { ResolvedOptions } from './options.js';
import { RetrySchedule } from './retrySchedule.js';
import { checkSession } from './sessionCheck.js';
import { createTokenSource, type TokenSource } from './tokenSource.js';

export interface ReconnectorHooks {
  /** Emits a client event; listeners cannot affect the caller. */
  fire<K extends keyof PushEvents>(name: K, payload: PushEvents[K]): void;
  /** A text frame arrived on the current connection. */
  onText(text: string): void;
  /** The client is stopping for good: drop what was waiting for a connection. */
  onShutdown(): void;
}

/**
 * The connection state machine: connects to a node from the list (renewing
 * the token first when due), reconnects after a drop with the retry schedule,
 * tells a refused token from a network failure, follows `online`/`offline`,
 * and stops for good on the codes that say so. It owns the client's `state`
 * and emits `connecting`, `connected`, `disconnected` and `state`; what to do
 * with the frames is the client's business.
 */
export class Reconnector {
  private readonly nodes: NodeList;
  private readonly retry: RetrySchedule;
  private readonly tokens: TokenSource;
  private current: Connection | undefined;
  private offline = false;
  private renewing = false;
  /** Bumped whenever pending async work (token refresh, session check) must not resume. */
  private generation = 0;
  private _state: ClientState = 'idle';

  constructor(
    private readonly o: ResolvedOptions,
    private readonly hooks: ReconnectorHooks,
  ) {
    this.tokens = createTokenSource(o.token, o.getToken, o.tokenRefreshMarginMs);
    this.nodes = createNodeList(o.nodes);
    this.retry = new RetrySchedule(o.backoff);
  }

  get state(): ClientState {
    return this._state;
  }

  /** Starts connecting, and following `online`/`offline` events. */
  start(): void {
    this.o.connectivity?.addEventListener('offline', this.onOffline);
    this.o.connectivity?.addEventListener('online', this.onOnline);
    void this.attempt();
  }

  /** Sends a text frame on the current connection; false when there is none that took the welcome. */
  send(text: string): boolean {
    return this.current?.send(text) ?? false;
  }

  /**
   * The current connection got the server's welcome: it is the good one.
   * Returns false when a `connected` listener replaced or closed it meanwhile.
   */
  welcomed(w: WelcomeFrame): boolean {
    const c = this.current!;
    c.welcome(w.heartbeatMs);
    this.nodes.succeeded(c.url);
    this.retry.reset();
    this.setState('connected');
    this.hooks.fire('connected', { nodeId: w.nodeId, connId: w.connId, url: c.url });
    return this.current === c;
  }

  /** The node is draining (`reconnect` frame): go where it says, soon but spread out. */
  moveTo(nodes: string[]): void {
    if (nodes.length > 0) this.nodes.replace(nodes, { keepPreferred: false });
    else this.nodes.failed();
    this.dropSocket();
    this.retry.reset();
    this.retryLater(CLOSE.GOING_AWAY, 'server asked to reconnect');
  }

  /**
   * The server will close at the token's `exp` (4001): fetch a fresh token
   * now and hand it over on the open socket, so the session goes on without
   * a reconnect. Without `getToken` the close comes, and the client stops
   * after it like after any expired token.
   */
  async renewInSession(): Promise<void> {
    if (!this.tokens.canRefresh || this.renewing) return;
    const c = this.current;
    this.renewing = true;
    try {
      const renewed = await this.refreshToken(() => true);
      // A socket that dropped meanwhile is replaced by one that opens with the new token anyway.
      if (renewed && c && this.current === c) this.send(JSON.stringify({ type: CLIENT_FRAME.AUTH, token: this.tokens.token } satisfies ClientFrame));
    } finally {
      this.renewing = false;
    }
  }

  /** Stops for good: closes the socket with `code` and never reconnects. A `reason` also goes in a `disconnected` event. */
  shutdown(code: number, reason: string): void {
    this.generation++;
    this.retry.cancel();
    const hadSocket = this.current !== undefined;
    this.dropSocket(code, reason);
    this.o.connectivity?.removeEventListener('offline', this.onOffline);
    this.o.connectivity?.removeEventListener('online', this.onOnline);
    this.hooks.onShutdown();
    if (hadSocket && reason !== '') this.hooks.fire('disconnected', { code, reason, willReconnect: false, delayMs: 0 });
    this.setState('closed');
  }

  private setState(state: ClientState): void {
    if (state === this._state) return;
    const previous = this._state;
    this._state = state;
    this.hooks.fire('state', { state, previous });
  }

  private async attempt(): Promise<void> {
    const gen = ++this.generation;
    this.setState('connecting');
    if (this.tokens.shouldRefresh()) {
      const refreshed = await this.refreshToken(() => gen === this.generation);
      if (gen !== this.generation) return;
      // A token that is merely close to expiry is still worth a try.
      if (!refreshed && this.tokens.unusable()) return this.retryLater(1006, 'token refresh failed');
    }
    const url = this.nodes.current();
    this.hooks.fire('connecting', { url, attempt: this.retry.attempt });
    if (gen !== this.generation) return;
    let conn: Connection;
    try {
      conn = new Connection(url, this.tokens.token, this.o, {
        onText: (text) => conn === this.current && this.hooks.onText(text),
        onClose: (code, reason) => conn === this.current && void this.onSocketClosed(code, reason),
      });
    } catch (err) {
      // The constructor itself refused (a blocked URL, for instance): count it as a failed attempt.
      this.nodes.failed();
      return this.retryLater(1006, `cannot open a socket: ${errorText(err)}`);
    }
    this.current = conn;
  }

  /**
   * Calls `getToken`; false (after an `error` event) when it failed. A node
   * list that comes with the token replaces the current one if `stillWanted()`.
   */
  private async refreshToken(stillWanted: () => boolean): Promise<boolean> {
    try {
      const nodes = await this.tokens.refresh();
      if (nodes && stillWanted()) this.nodes.replace(nodes, { keepPreferred: true });
      return true;
    } catch (err) {
      this.hooks.fire('error', { code: CLIENT_ERROR.TOKEN_REFRESH_FAILED, message: `getToken failed: ${errorText(err)}`, cause: err });
      return false;
    }
  }

  /** Detaches the current socket and its timers, closing it if still open. */
  private dropSocket(code: number = CLOSE.NORMAL, reason = ''): void {
    this.current?.discard(code, reason);
    this.current = undefined;
  }

  /** The socket closed, or the client gave up on it (connect timeout, dead heartbeat). */
  private async onSocketClosed(code: number, reason: string): Promise<void> {
    const c = this.current;
    if (!c) return;
    this.dropSocket();
    if (this._state === 'closed') return;
    const action = afterClose(code, c.opened);
    if (action.kind === 'stop') return this.closedByServer(code, reason);
    if (action.kind === 'check-session') return this.retryAfterFailedOpen(c.url, code, reason);
    if (action.tokenExpired) this.tokens.markExpired();
    this.nodes.dropped();
    if (action.nextNode) this.nodes.failed();
    this.retryLater(code, reason);
  }

  /** A socket that never opened: maybe the token, maybe the network. Only the node can tell. */
  private async retryAfterFailedOpen(url: string, code: number, reason: string): Promise<void> {
    const gen = ++this.generation;
    const verdict = await checkSession(this.o.fetch, url, this.tokens.token, this.o.connectTimeoutMs);
    if (gen !== this.generation) return;
    const action = afterFailedOpen(verdict, this.tokens.canRefresh);
    if (action.kind === 'refused') return this.authRefused(code, reason, action.code, action.message);
    if (action.kind === 'renew-token') this.tokens.markExpired();
    else this.nodes.failed();
    this.retryLater(code, reason);
  }

  private closedByServer(code: number, reason: string): void {
    this.hooks.fire('disconnected', { code, reason, willReconnect: false, delayMs: 0 });
    if (code === CLOSE.KICKED) this.hooks.fire('kicked', { reason });
    else
      this.hooks.fire('error', { code: CLIENT_ERROR.CLOSED_BY_SERVER, message: `server closed with ${code}${reason ? `: ${reason}` : ''}; not reconnecting` });
    this.shutdown(CLOSE.NORMAL, '');
  }

  private authRefused(code: number, reason: string, tokenCode: string, message: string): void {
    this.hooks.fire('disconnected', { code, reason, willReconnect: false, delayMs: 0 });
    this.shutdown(CLOSE.NORMAL, '');
    this.hooks.fire('error', { code: CLIENT_ERROR.AUTH_REFUSED, message: `${tokenCode}: ${message}` });
  }

  private retryLater(code: number, reason: string): void {
    this.retry.cancel();
    this.setState('disconnected');
    if (this.offline) {
      this.hooks.fire('disconnected', { code, reason, willReconnect: true, delayMs: -1 });
      return;
    }
    const delayMs = this.retry.nextDelay(code);
    this.hooks.fire('disconnected', { code, reason, willReconnect: true, delayMs });
    if (this._state !== 'disconnected') return;
    this.retry.schedule(delayMs, () => void this.attempt());
  }

  private readonly onOffline = (): void => {
    this.offline = true;
    if (this._state === 'closed') return;
    this.generation++;
    this.retry.cancel();
    const hadSocket = this.current !== undefined;
    this.dropSocket(CLOSE.NORMAL, 'offline');
    if (hadSocket) this.nodes.dropped();
    this.retryLater(1006, 'offline');
  };

  private readonly onOnline = (): void => {
    this.offline = false;
    if (this._state === 'closed' || this._state === 'connected') return;
    this.retry.cancel();
    this.dropSocket();
    this.retry.reset();
    void this.attempt();
  };
}
