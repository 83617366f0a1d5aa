import { CLOSE, FRAME_ERROR } from '../../protocol/codes.js';
import { CLIENT_FRAME, SERVER_FRAME, type ClientFrame } from '../../protocol/frames.js';
import { createAckBatcher, type AckBatcher } from './ackBatcher.js';
import { CLIENT_ERROR, errorText } from './clientErrors.js';
import { TypedEmitter, type ClientState, type Listener, type PushEvents } from './events.js';
import { MESSAGE_ID, parseServerFrame, type WelcomeFrame } from './frames.js';
import { createMessageIntake, type MessageIntake } from './messageIntake.js';
import { resolveOptions, type PushClientOptions, type ResolvedOptions } from './options.js';
import { Outbox } from './outbox.js';
import { Reconnector } from './reconnector.js';

/**
 * A push connection that stays up: connects to a node from the list,
 * reconnects with jittered backoff when the link drops, de-duplicates and
 * acks messages, refreshes the token, and restores group subscriptions.
 * Connecting and reconnecting is the `Reconnector`'s job (reconnector.ts);
 * this class is the public API and acts on the server's frames. The other
 * pieces (dedupe, acks, the outbox, heartbeat, node order) live in their own
 * files too.
 */
export class PushClient {
  private readonly o: ResolvedOptions;
  private readonly events = new TypedEmitter<PushEvents>();
  private readonly link: Reconnector;
  private readonly acks: AckBatcher;
  private readonly intake: MessageIntake;
  private readonly groups = new Set<string>();
  private readonly outbox: Outbox;

  constructor(options: PushClientOptions) {
    this.o = resolveOptions(options);
    this.link = new Reconnector(this.o, {
      fire: (name, payload) => this.fire(name, payload),
      onText: (text) => this.onText(text),
      onShutdown: () => {
        this.acks.clear();
        this.outbox.clear();
      },
    });
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
      queueAck: (id) => this.state !== 'closed' && this.acks.add(id),
      onHandlerFailed: (m, err) => this.fire('error', { code: CLIENT_ERROR.HANDLER_FAILED, message: `message ${m.id}: ${errorText(err)}`, cause: err }),
    });
  }

  get state(): ClientState {
    return this.link.state;
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
    if (this.state === 'closed') throw new Error('PushClient: closed; create a new client');
    if (this.state !== 'idle') return;
    this.link.start();
  }

  /** Stops everything: sends queued acks if connected, closes the socket, and never reconnects. */
  close(): void {
    if (this.state === 'closed') return;
    if (this.state === 'connected') this.acks.flush();
    this.link.shutdown(CLOSE.NORMAL, 'client closed');
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
    if (this.state === 'closed') return false;
    return this.link.send(frame) || this.outbox.push(frame);
  }

  /** Emits an event whose listeners cannot affect the client; their errors surface as uncaught, like DOM listeners'. */
  private fire<K extends keyof PushEvents>(name: K, payload: PushEvents[K]): void {
    this.events.emit(name, payload)?.catch((err: unknown) => {
      setTimeout(() => {
        throw err;
      }, 0);
    });
  }

  private sendFrame(frame: ClientFrame): boolean {
    return this.link.send(JSON.stringify(frame));
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
        return this.link.shutdown(CLOSE.NORMAL, 'kicked');
      case SERVER_FRAME.TOKEN_EXPIRING:
        return void this.link.renewInSession();
      case SERVER_FRAME.RECONNECT:
        return this.link.moveTo(frame.nodes);
      default:
        return;
    }
  }

  private onWelcome(w: WelcomeFrame): void {
    if (!this.link.welcomed(w)) return;
    // The server forgets subscriptions with the socket; unsent acks and upstream wait for this moment.
    for (const group of this.groups) this.sendFrame({ type: CLIENT_FRAME.SUBSCRIBE, group });
    this.acks.flush();
    this.outbox.drain((frame) => this.link.send(frame));
  }
}
