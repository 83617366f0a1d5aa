import type { MessageFrame } from './frames.js';

export type ClientState = 'idle' | 'connecting' | 'connected' | 'disconnected' | 'closed';

/** Every event a `PushClient` emits, with its payload. */
export interface PushEvents {
  /** A socket is being opened to `url`; `attempt` counts failures since the last success. */
  connecting: { url: string; attempt: number };
  /** The server's welcome frame arrived: messages flow from here on. */
  connected: { nodeId: string; connId: string; url: string };
  /** A socket closed or failed to open. `delayMs` is the wait before the next attempt when `willReconnect`. */
  disconnected: { code: number; reason: string; willReconnect: boolean; delayMs: number };
  /** A message, emitted once per id. Return a promise to delay its automatic ack until the promise resolves. */
  message: MessageFrame;
  /** Server `error` frames (their code) and client-side errors (`AUTH_REFUSED`, `TOKEN_REFRESH_FAILED`, `HANDLER_FAILED`). */
  error: { code: string; message: string; cause?: unknown };
  /** The server sent `kick` or closed with 4009. The client stops and does not reconnect. */
  kicked: { reason: string };
  state: { state: ClientState; previous: ClientState };
}

export type Listener<T> = (payload: T) => unknown;

/**
 * A minimal typed event emitter. Listener failures never break the caller:
 * `emit` returns a promise only when a listener threw or returned a promise,
 * so the client can wait for (or report) them, and otherwise costs nothing.
 */
export class TypedEmitter<E extends object> {
  private readonly listeners = new Map<keyof E, Set<Listener<never>>>();

  on<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void {
    let set = this.listeners.get(name);
    if (!set) this.listeners.set(name, (set = new Set()));
    set.add(listener as Listener<never>);
    return () => this.off(name, listener);
  }

  once<K extends keyof E>(name: K, listener: Listener<E[K]>): () => void {
    const off = this.on(name, (payload) => {
      off();
      return listener(payload);
    });
    return off;
  }

  off<K extends keyof E>(name: K, listener: Listener<E[K]>): void {
    this.listeners.get(name)?.delete(listener as Listener<never>);
  }

  listenerCount(name: keyof E): number {
    return this.listeners.get(name)?.size ?? 0;
  }

  /**
   * Calls each listener in order. Returns undefined when all returned
   * synchronously; otherwise a promise that settles when the returned
   * promises do, rejecting if any listener threw or rejected.
   */
  emit<K extends keyof E>(name: K, payload: E[K]): Promise<void> | undefined {
    const set = this.listeners.get(name);
    if (!set || set.size === 0) return undefined;
    let waits: unknown[] | undefined;
    for (const listener of [...set] as Listener<E[K]>[]) {
      try {
        const r = listener(payload);
        if (r !== null && typeof r === 'object' && typeof (r as PromiseLike<unknown>).then === 'function') (waits ??= []).push(r);
      } catch (err) {
        (waits ??= []).push(Promise.reject(err));
      }
    }
    return waits && Promise.all(waits).then(() => undefined);
  }
}
