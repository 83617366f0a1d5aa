/**
 * The slice of the WebSocket API the client uses. The browser's `WebSocket`
 * and the `ws` package's class both fit. Handlers are typed `unknown` here so
 * that either implementation's own event types are accepted; the client
 * assigns handlers that read only the fields below.
 */
export interface WebSocketLike {
  readonly readyState: number;
  onopen: unknown;
  onmessage: unknown;
  onclose: unknown;
  onerror: unknown;
  send(data: string): void;
  close(code?: number, reason?: string): void;
}

export type WebSocketConstructor = new (url: string) => WebSocketLike;

/** `readyState` of an open socket (the same in every implementation). */
export const OPEN = 1;

export interface SocketHandlers {
  onOpen(): void;
  onText(text: string): void;
  onClose(code: number, reason: string): void;
}

/**
 * Opens a socket and forwards its events. `error` events are ignored: every
 * implementation follows them with `close`, which is what the client acts on.
 */
export function openSocket(WebSocketClass: WebSocketConstructor, url: string, h: SocketHandlers): WebSocketLike {
  const ws = new WebSocketClass(url);
  ws.onopen = () => h.onOpen();
  ws.onmessage = (ev: { data: unknown }) => h.onText(typeof ev.data === 'string' ? ev.data : String(ev.data));
  ws.onclose = (ev: { code?: number; reason?: string }) => h.onClose(ev.code ?? 1006, ev.reason ?? '');
  ws.onerror = () => undefined;
  return ws;
}

/** Detaches every handler and closes, so a socket being replaced can no longer call back. */
export function discardSocket(ws: WebSocketLike, code = 1000, reason = ''): void {
  ws.onopen = null;
  ws.onmessage = null;
  ws.onclose = null;
  ws.onerror = () => undefined;
  try {
    ws.close(code, reason);
  } catch {
    // Already closing, or a code the implementation refuses; the socket is gone either way.
  }
}

/** `url` with the token added as the `token` query parameter. */
export function withToken(url: string, token: string): string {
  return `${url}${url.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`;
}
