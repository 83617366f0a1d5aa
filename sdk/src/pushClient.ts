import { CLOSE, FRAME_ERROR } from '../../protocol/codes.js';
import { CLIENT_FRAME, SERVER_FRAME, type ClientFrame } from '../../protocol/frames.js';
import { createAckBatcher, type AckBatcher } from './ackBatcher.js';
import { CLIENT_ERROR, errorText } from './clientErrors.js';
import { afterClose, afterFailedOpen } from './closePolicy.js';
import { Connection } from './connection.js';
import { TypedEmitter, type ClientState, type Listener, type PushEvents } from './events.js';
import { MESSAGE_ID, parseServerFrame, type WelcomeFrame } from './frames.js';
import { createNodeList, type NodeList } from './nodeList.js';
import { createMessageIntake, type MessageIntake } from './messageIntake.js';
import { resolveOptions, type PushClientOptions, type ResolvedOptions } from './options.js';
import { Outbox } from './outbox.js';
import { RetrySchedule } from './retrySchedule.js';
import { checkSession } from './sessionCheck.js';
import { createTokenSource, type TokenSource } from './tokenSource.js';

/**
 * A push connection that stays up: connects to a node from the list,
 * reconnects with jittered backoff when the link drops, de-duplicates and
 * acks messages, refreshes the token, and restores group subscriptions.
 * The pieces (the socket and its timers, retry timing, node order, what a
 * close means, dedupe, acks, the outbox) live in their own files; this class
 * only sequences them.
 */
export class PushClient {
  private readonly o: ResolvedOptions;
  private readonly events = new TypedEmitter<PushEvents>();
  private readonly nodes: NodeList;
  private readonly retry: RetrySchedule;
  private readonly acks: AckBatcher;
  private readonly intake: MessageIntake;
  private readonly tokens: TokenSource;
  private readonly groups = new Set<string>();
  private readonly outbox: Outbox;
  private current: Connection | undefined;
  private offline = false;
  private renewing = false;
  /** Bumped whenever pending async work (token refresh, session check) must not resume. */
  private generation = 0;
  private _state: ClientState = 'idle';

  constructor(options: PushClientOptions) {
    this.o = resolveOptions(options);
    this.tokens = createTokenSource(this.o.token, this.o.getToken, this.o.tokenRefreshMarginMs);
    this.nodes = createNodeList(this.o.nodes);
    this.retry = new RetrySchedule(this.o.backoff);
    this.outbox = new Outbox(this.o.maxQueuedSends);
    this.acks = createAckBatcher({
      batchMs: this.o.ackBatchMs,
      batchMax: this.o.ackBatchMax,
      send: (ids) => this.sendFrame({ type: CLIENT_FRAME.ACK, ids }),
    });
    this.intake = createMessageIntake({
      dedupeSize: this.o.dedupeSize,
      autoAck: this.o.autoAck,
      emit: (m) => this.events.emit('message', m),
      queueAck: (id) => this._state !== 'closed' && this.acks.add(id),
      onHandlerFailed: (m, err) => this.fire('error', { code: CLIENT_ERROR.HANDLER_FAILED, message: `message ${m.id}: ${errorText(err)}`, cause: err }),
    });
  }

  get state(): ClientState {
    return this._state;
  }

  on<K extends keyof PushEvents>(name: K, listener: Listener<PushEvents[K]>): () => void {
    return this.events.on(name, listener);
  }

  once<K extends keyof PushEvents>(name: K, listener: Listener<PushEvents[K]>): () => void {
    return this.events.once(name, listener);
  }

  off<K extends keyof PushEvents>(name: K, listener: Listener<PushEvents[K]>): void {
    this.events.off(name, listener);
  }

  /** Starts connecting. Call once, after adding listeners; a closed client cannot be restarted. */
  connect(): void {
    if (this._state === 'closed') throw new Error('PushClient: closed; create a new client');
    if (this._state !== 'idle') return;
    this.o.connectivity?.addEventListener('offline', this.onOffline);
    this.o.connectivity?.addEventListener('online', this.onOnline);
    void this.attempt();
  }

  /** Stops everything: sends queued acks if connected, closes the socket, and never reconnects. */
  close(): void {
    if (this._state === 'closed') return;
    if (this._state === 'connected') this.acks.flush();
    this.shutdown(CLOSE.NORMAL, 'client closed');
  }

  /** Acknowledges a persistent message (needed only with `autoAck: false`). Batched like automatic acks. */
  ack(id: string): void {
    if (typeof id !== 'string' || !MESSAGE_ID.test(id)) throw new TypeError(`PushClient.ack: ${JSON.stringify(id)} is not a message id`);
    this.intake.acked(id);
  }

  /** Joins a group now if connected, and again after every reconnect. */
  subscribe(group: string): void {
    if (typeof group !== 'string' || group === '') throw new TypeError('PushClient.subscribe: group must be a non-empty string');
    this.groups.add(group);
    this.sendFrame({ type: CLIENT_FRAME.SUBSCRIBE, group });
  }

  unsubscribe(group: string): void {
    if (!this.groups.delete(group)) return;
    this.sendFrame({ type: CLIENT_FRAME.UNSUBSCRIBE, group });
  }

  /** The groups re-sent after each reconnect. */
  get subscriptions(): string[] {
    return [...this.groups];
  }

  /**
   * Sends `payload` upstream (to business systems). While disconnected it is
   * queued, up to `maxQueuedSends`; returns false when it was dropped
   * because the queue is full or the client is closed.
   */
  send(payload: unknown): boolean {
    if (payload === undefined) throw new TypeError('PushClient.send: payload is required');
    const frame = JSON.stringify({ type: CLIENT_FRAME.UPSTREAM, payload } satisfies ClientFrame);
    if (this._state === 'closed') return false;
    return this.sendText(frame) || this.outbox.push(frame);
  }

  private setState(state: ClientState): void {
    if (state === this._state) return;
    const previous = this._state;
    this._state = state;
    this.fire('state', { state, previous });
  }

  /** Emits an event whose listeners cannot affect the client; their errors surface as uncaught, like DOM listeners'. */
  private fire<K extends keyof PushEvents>(name: K, payload: PushEvents[K]): void {
    this.events.emit(name, payload)?.catch((err: unknown) => {
      setTimeout(() => {
        throw err;
      }, 0);
    });
  }

  private sendText(text: string): boolean {
    return this.current?.send(text) ?? false;
  }

  private sendFrame(frame: ClientFrame): boolean {
    return this.sendText(JSON.stringify(frame));
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
    this.fire('connecting', { url, attempt: this.retry.attempt });
    if (gen !== this.generation) return;
    let conn: Connection;
    try {
      conn = new Connection(url, this.tokens.token, this.o, {
        onText: (text) => conn === this.current && this.onText(text),
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
      this.fire('error', { code: CLIENT_ERROR.TOKEN_REFRESH_FAILED, message: `getToken failed: ${errorText(err)}`, cause: err });
      return false;
    }
  }

  private onText(text: string): void {
    const frame = parseServerFrame(text);
    switch (frame?.type) {
      case SERVER_FRAME.WELCOME:
        return this.onWelcome(frame);
      case SERVER_FRAME.MESSAGE:
        return this.intake.receive(frame);
      case SERVER_FRAME.ERROR:
        // The server did not take these acks: queue them again for the next flush.
        if (frame.code === FRAME_ERROR.ACK_BACKLOG && Array.isArray(frame.ids)) for (const id of frame.ids) this.acks.add(id);
        return this.fire('error', { code: frame.code, message: frame.message });
      case SERVER_FRAME.KICK:
        this.fire('kicked', { reason: frame.reason });
        return this.shutdown(CLOSE.NORMAL, 'kicked');
      case SERVER_FRAME.TOKEN_EXPIRING:
        return void this.renewInSession();
      case SERVER_FRAME.RECONNECT:
        // The node is draining: go where it says, soon but spread out.
        if (frame.nodes.length > 0) this.nodes.replace(frame.nodes, { keepPreferred: false });
        else this.nodes.failed();
        this.dropSocket();
        this.retry.reset();
        return this.retryLater(CLOSE.GOING_AWAY, 'server asked to reconnect');
      default:
        return;
    }
  }

  private onWelcome(w: WelcomeFrame): void {
    const c = this.current!;
    c.welcome(w.heartbeatMs);
    this.nodes.succeeded(c.url);
    this.retry.reset();
    this.setState('connected');
    this.fire('connected', { nodeId: w.nodeId, connId: w.connId, url: c.url });
    if (this.current !== c) return;
    // The server forgets subscriptions with the socket; unsent acks and upstream wait for this moment.
    for (const group of this.groups) this.sendFrame({ type: CLIENT_FRAME.SUBSCRIBE, group });
    this.acks.flush();
    this.outbox.drain((frame) => this.sendText(frame));
  }

  /**
   * The server will close at the token's `exp` (4001): fetch a fresh token
   * now and hand it over on the open socket, so the session goes on without
   * a reconnect. Without `getToken` the close comes, and the client stops
   * after it like after any expired token.
   */
  private async renewInSession(): Promise<void> {
    if (!this.tokens.canRefresh || this.renewing) return;
    const c = this.current;
    this.renewing = true;
    try {
      const renewed = await this.refreshToken(() => true);
      // A socket that dropped meanwhile is replaced by one that opens with the new token anyway.
      if (renewed && c && this.current === c) this.sendFrame({ type: CLIENT_FRAME.AUTH, token: this.tokens.token });
    } finally {
      this.renewing = false;
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
    this.fire('disconnected', { code, reason, willReconnect: false, delayMs: 0 });
    if (code === CLOSE.KICKED) this.fire('kicked', { reason });
    else this.fire('error', { code: CLIENT_ERROR.CLOSED_BY_SERVER, message: `server closed with ${code}${reason ? `: ${reason}` : ''}; not reconnecting` });
    this.shutdown(CLOSE.NORMAL, '');
  }

  private authRefused(code: number, reason: string, tokenCode: string, message: string): void {
    this.fire('disconnected', { code, reason, willReconnect: false, delayMs: 0 });
    this.shutdown(CLOSE.NORMAL, '');
    this.fire('error', { code: CLIENT_ERROR.AUTH_REFUSED, message: `${tokenCode}: ${message}` });
  }

  private retryLater(code: number, reason: string): void {
    this.retry.cancel();
    this.setState('disconnected');
    if (this.offline) {
      this.fire('disconnected', { code, reason, willReconnect: true, delayMs: -1 });
      return;
    }
    const delayMs = this.retry.nextDelay(code);
    this.fire('disconnected', { code, reason, willReconnect: true, delayMs });
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

  private shutdown(code: number, reason: string): void {
    this.generation++;
    this.retry.cancel();
    const hadSocket = this.current !== undefined;
    this.dropSocket(code, reason);
    this.o.connectivity?.removeEventListener('offline', this.onOffline);
    this.o.connectivity?.removeEventListener('online', this.onOnline);
    this.acks.clear();
    this.outbox.clear();
    if (hadSocket && reason !== '') this.fire('disconnected', { code, reason, willReconnect: false, delayMs: 0 });
    this.setState('closed');
  }
}
