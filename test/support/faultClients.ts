import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import type { TestStack } from './stack.js';

/**
 * A device like the SDK's: reconnects whenever its connection drops (a pusher
 * killed or restarted), de-duplicates messages by id, acks every message it
 * shows, and counts what it showed.
 */
export interface Device {
  user: string;
  /** Ids shown, once each (after de-duplication by id). */
  shown: Set<string>;
  /** Payloads shown, in order, once per id. */
  payloads: unknown[];
  /** Messages received on the current connection (before de-duplication). */
  received(): { id: string; payload: unknown }[];
  /** Resolves when a connection is open (the current one or the next). */
  connected(): Promise<void>;
  /** Drops the connection and opens a new one. */
  reconnect(): Promise<void>;
  close(): void;
}

export function reconnectingDevice(user: string, url: () => string, token: () => Promise<string>, { retryMs = 200 } = {}): Device {
  const shown = new Set<string>();
  const payloads: unknown[] = [];
  let current: { id: string; payload: unknown }[] = [];
  let ws: WebSocket | undefined;
  let closed = false;
  let open: Promise<void>;
  let onOpen: () => void = () => undefined;
  const armed = () => (open = new Promise<void>((r) => (onOpen = r)));
  armed();

  const connect = async (): Promise<void> => {
    if (closed) return;
    let t: string;
    try {
      t = await token();
    } catch {
      setTimeout(() => void connect(), retryMs);
      return;
    }
    const sock = new WebSocket(`${url()}?token=${encodeURIComponent(t)}`);
    ws = sock;
    current = [];
    sock.on('open', () => onOpen());
    sock.on('message', (data) => {
      const f = JSON.parse(data.toString());
      if (f.type !== 'message') return;
      current.push({ id: f.id, payload: f.payload });
      if (!shown.has(f.id)) {
        shown.add(f.id);
        payloads.push(f.payload);
      }
      if (f.persistent) sock.send(JSON.stringify({ type: 'ack', ids: [f.id] }));
    });
    sock.on('error', () => undefined);
    sock.on('close', () => {
      if (ws !== sock || closed) return;
      armed();
      setTimeout(() => void connect(), retryMs);
    });
  };
  void connect();

  return {
    user,
    shown,
    payloads,
    received: () => current,
    connected: () => open,
    async reconnect() {
      const old = ws;
      armed();
      ws = undefined;
      old?.removeAllListeners('close');
      old?.terminate();
      await connect();
      await open;
    },
    close() {
      closed = true;
      ws?.terminate();
    },
  };
}

/**
 * A careful business client: sends with an idempotency key and retries the
 * same request (same key) on a network error, 5xx or 409 until it gets 202
 * or its deadline passes.
 */
export async function submitCarefully(
  url: string,
  apiKey: string,
  body: Record<string, unknown>,
  { deadlineMs = 120_000, retryMs = 250, requestTimeoutMs = 5000, onError = (_answer: string): void => undefined } = {},
): Promise<{ id: string; status: string; attempts: number } | { error: string; attempts: number }> {
  const end = Date.now() + deadlineMs;
  let attempts = 0;
  let last = '';
  while (Date.now() < end) {
    attempts++;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(requestTimeoutMs),
      });
      const text = await res.text();
      if (res.status === 202) {
        const b = JSON.parse(text) as { id: string; status: string };
        return { id: b.id, status: b.status, attempts };
      }
      last = `${res.status} ${text.slice(0, 200)}`;
      if (res.status < 500 && res.status !== 409 && res.status !== 429) return { error: last, attempts };
    } catch (err) {
      last = (err as Error).message;
    }
    onError(last);
    await new Promise((r) => setTimeout(r, retryMs));
  }
  return { error: `gave up: ${last}`, attempts };
}

/**
 * The persistent message `{ n }` to `user`, submitted carefully to the stack's
 * collector (idempotency key `<keyPrefix>-<n>`, 30 s deadline); fails the test
 * unless it is accepted, and returns its id.
 */
export async function submitNumbered(s: TestStack, user: string, n: number, keyPrefix: string): Promise<string> {
  const r = await submitCarefully(
    `${s.collector.url}/v1/messages`,
    s.apiKey,
    { to: { users: [user] }, payload: { n }, persistent: true, idempotencyKey: `${keyPrefix}-${n}` },
    { deadlineMs: 30_000 },
  );
  assert.ok('id' in r, JSON.stringify(r));
  return r.id;
}
