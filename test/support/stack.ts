import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { MongoClient } from 'mongodb';
import { createAppStore, type AppLimits, type DeviceMode } from '../../store/apps.js';
import { freePort, startService, type RunningService } from './services.js';
import { dropTopics, stack as infra, uniqueId } from './env.js';

/**
 * A whole pipeline (auth, collector, N dispatchers, N pushers, the admin service) on the shared
 * local Kafka/Redis/MongoDB, isolated by a unique topic prefix, database and
 * app, so test files never see each other's traffic.
 */
export interface TestStack {
  env: Record<string, string>;
  app: string;
  apiKey: string;
  auth: RunningService;
  collector: RunningService;
  dispatchers: RunningService[];
  pushers: RunningService[];
  /** The operator API and dashboard (status, tasks, kicks, traces, replays, dead letters). */
  admin: RunningService;
  mongo: MongoClient;
  token(userId: string, deviceId: string): Promise<{ token: string; nodes: string[]; expiresAt: string }>;
  send(body: unknown, opts?: { apiKey?: string; raw?: string; contentType?: string }): Promise<{ status: number; body: any; headers: Headers }>;
  startPusher(nodeId: string): Promise<RunningService>;
  startDispatcher(): Promise<RunningService>;
  /** Starts an admin service (startStack starts one) and makes it `admin`. */
  startAdmin(): Promise<RunningService>;
  stop(): Promise<void>;
}

export async function startStack({
  pushers = 1,
  dispatchers = 1,
  deviceMode = 'coexist' as DeviceMode,
  allowedOrigins = ['*'],
  limits = {} as Partial<AppLimits>,
  openGroups = true,
  env: extraEnv = {},
} = {}): Promise<TestStack> {
  const id = uniqueId('t').replace(/[^A-Za-z0-9]/g, '');
  const env: Record<string, string> = {
    KAFKA_TOPIC_PREFIX: `${id}.`,
    REDIS_KEY_PREFIX: `${id}:`,
    MONGO_DB: id,
    INGEST_PARTITIONS: '4',
    // Explicit (services default to production): tests and benchmarks use the development operator key.
    PUSH_MODE: 'development',
    DEMO_API_KEY: `${id}-demo`,
    // Every test and benchmark client shares 127.0.0.1: the per-address handshake rate is tested on its own.
    PUSHER_HANDSHAKE_EXEMPT: 'loopback',
    ...extraEnv,
  };
  const app = `app-${id}`;
  const apiKey = `key-${id}`;
  // A stack on another server (fault tests, benchmarks on a private backend) keeps its app where its services look for it.
  const mongo = new MongoClient(env.MONGO_URL ?? infra.mongoUrl);
  await createAppStore({ db: mongo.db(id) }).upsert({ id: app, apiKeys: [apiKey], allowedOrigins, deviceMode, limits, openGroups });

  const auth = await startService('auth', env);
  env.AUTH_URL = auth.url;
  const collector = await startService('collector', env);
  // The admin service checks and samples the first dispatcher, whenever it starts, on this port.
  const firstDispatcherPort = String(await freePort());
  const adminEnv = { COLLECTOR_URL: collector.url, DISPATCHER_URLS: `http://127.0.0.1:${firstDispatcherPort}`, ...env };
  const admins: RunningService[] = [];
  const s: TestStack = {
    env,
    app,
    apiKey,
    auth,
    collector,
    dispatchers: [],
    pushers: [],
    admin: undefined as unknown as RunningService, // started with the dispatchers and pushers below (startAdmin)
    mongo,
    async token(userId, deviceId) {
      const res = await fetch(`${auth.url}/v1/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify({ userId, deviceId }),
      });
      if (res.status !== 200) throw new Error(`token: ${res.status} ${await res.text()}`);
      return (await res.json()) as { token: string; nodes: string[]; expiresAt: string };
    },
    async send(body, opts = {}) {
      const res = await fetch(`${collector.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${opts.apiKey ?? apiKey}`, 'content-type': opts.contentType ?? 'application/json' },
        body: opts.raw ?? JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
    },
    async startPusher(nodeId) {
      const p = await startService('pusher', { PUSHER_HEARTBEAT_MS: '2000', ...env, NODE_ID: `${id}-${nodeId}` });
      s.pushers.push(p);
      return p;
    },
    async startDispatcher() {
      const taken = s.dispatchers.some((d) => String(d.port) === firstDispatcherPort && d.proc.exitCode === null && d.proc.signalCode === null);
      const port: Record<string, string> = taken ? {} : { DISPATCHER_METRICS_PORT: firstDispatcherPort };
      const d = await startService('dispatcher', { ...env, DISPATCHER_NODE_CACHE_MS: '200', ...port });
      s.dispatchers.push(d);
      return d;
    },
    async startAdmin() {
      const a = await startService('admin', adminEnv);
      admins.push(a);
      s.admin = a;
      return a;
    },
    async stop() {
      await Promise.all([...s.pushers, ...s.dispatchers, ...admins, collector, auth].map((svc) => svc.stop('SIGTERM', 10_000)));
      await mongo
        .db(id)
        .dropDatabase()
        .catch(() => undefined);
      await mongo.close();
      await dropTopics(env.KAFKA_TOPIC_PREFIX!).catch(() => undefined);
    },
  };
  await Promise.all([
    s.startAdmin(),
    ...Array.from({ length: dispatchers }, () => s.startDispatcher()),
    ...Array.from({ length: pushers }, (_, i) => s.startPusher(`p${i + 1}`)),
  ]);
  return s;
}

/** The WebSocket URL of a pusher started by the stack. */
export const wsOf = (url: string) => url.replace('http', 'ws') + '/v1/ws';

export interface TestClient {
  ws: WebSocket;
  messages: { id: string; payload: any; persistent: boolean; sentAt: string }[];
  frames: any[];
  /** Resolves when `n` messages (counted across the client's life) have arrived. */
  waitFor(n: number, timeoutMs?: number): Promise<void>;
  ack(ids: string[]): void;
  closed: Promise<{ code: number; reason: string }>;
  close(): Promise<void>;
}

/**
 * Adds the ids of every message a client receives to `into` and acks each one,
 * like an app would; `onFrame` sees every later frame. Reads the client's own
 * record, which starts with the first frame (a listener added after
 * connectClient resolves can miss frames that arrived with the handshake).
 */
export function receiveAndAck(c: TestClient, into: Set<string>, onFrame: (frame: any) => void = () => undefined): void {
  const take = () => {
    for (const m of c.messages) into.add(m.id);
  };
  take();
  c.ws.on('message', (d) => {
    take();
    const f = JSON.parse(d.toString());
    if (f.type === 'message') c.ack([f.id]);
    onFrame(f);
  });
}

/**
 * How a test shows that `c` was not sent something: it sends `user` a marker
 * message (payload `"marker"` unless given), waits for `c` to receive one
 * message, and asserts that it is the marker and nothing else. Returns the
 * marker's id.
 */
export async function assertOnlyMarker(s: TestStack, c: TestClient, user: string, opts: { payload?: unknown; message?: string } = {}): Promise<string> {
  const marker = await s.send({ to: { users: [user] }, payload: opts.payload ?? 'marker' });
  await c.waitFor(1);
  assert.deepEqual(
    c.messages.map((m) => m.id),
    [marker.body.id],
    opts.message,
  );
  return marker.body.id;
}

/** A plain `ws` client that records every frame. */
export function connectClient(url: string, token: string, headers: Record<string, string> = {}): Promise<TestClient> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url}?token=${encodeURIComponent(token)}`, { headers });
    const messages: TestClient['messages'] = [];
    const frames: any[] = [];
    const waiters: { n: number; resolve: () => void }[] = [];
    const closed = new Promise<{ code: number; reason: string }>((r) => ws.once('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (data) => {
      const f = JSON.parse(data.toString());
      frames.push(f);
      if (f.type === 'message') messages.push(f);
      for (const w of [...waiters]) if (messages.length >= w.n) w.resolve();
    });
    ws.once('unexpected-response', (_req, res) => reject(Object.assign(new Error(`handshake refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.once('error', reject);
    ws.once('open', () =>
      resolve({
        ws,
        messages,
        frames,
        closed,
        waitFor(n, timeoutMs = 15_000) {
          if (messages.length >= n) return Promise.resolve();
          return new Promise((res, rej) => {
            const t = setTimeout(() => rej(new Error(`timed out with ${messages.length}/${n} messages`)), timeoutMs);
            waiters.push({ n, resolve: () => (clearTimeout(t), res()) });
          });
        },
        ack(ids) {
          ws.send(JSON.stringify({ type: 'ack', ids }));
        },
        async close() {
          if (ws.readyState === WebSocket.CLOSED) return;
          ws.close();
          await closed;
        },
      }),
    );
  });
}

export const OPERATOR_AUTH = 'Bearer operator-key';

/** Calls the admin service's operator API (GET without a body, POST with one) and parses the JSON answer. */
export async function adminCall(s: TestStack, path: string, body?: unknown, auth = OPERATOR_AUTH): Promise<{ status: number; body: any }> {
  const res = await fetch(`${s.admin.url}${path}`, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}
