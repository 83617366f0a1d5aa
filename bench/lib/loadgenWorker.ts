/**
 * One load generator process (forked by loadgen.ts): holds up to ~15,000
 * WebSocket clients, each bound to a loopback source address so the clients
 * of all workers together get past the ~28k ephemeral ports of one address.
 * Mints its own tokens with the stack's signing key, acks persistent
 * messages like an app would, and records submit-to-receipt latency from the
 * `t` carried in each bench payload.
 */
import { importJWK, SignJWT } from 'jose';
import { WebSocket } from 'ws';
import { TOKEN_AUDIENCE, TOKEN_ISSUER } from '../../protocol/tokens.js';
import { LatencyHistogram } from './histogram.js';
import {
  nowMs,
  type ClientRange,
  type CollectResult,
  type ConnectResult,
  type InitCommand,
  type ParentCommand,
  type WorkerReply,
  type WorkerStats,
} from './loadgenProtocol.js';

interface Client {
  idx: number;
  user: string;
  url: string;
  token: string;
  ws: WebSocket | undefined;
  /** Closed on purpose by `drop` (or `close`); not counted as unexpected. */
  away: boolean;
  acks: string[] | undefined;
}

let init: InitCommand | undefined;
let signingKey: CryptoKey | undefined;
const clients: Client[] = [];
const closeCodes: Record<string, number> = {};
let connecting = 0;
let closedUnexpectedly = 0;
let shuttingDown = false;

// Recording state (one phase at a time).
let recording: { label: string; startedAt: number; tick: LatencyHistogram; tickSecond: number } | undefined;
let hist = new LatencyHistogram();
let seen = new Set<string>();
let duplicates = 0;
let foreign = 0;
let acksSent = 0;
let perSecond: number[] = [];
let lastReceiptAt = 0;

const send = (m: WorkerReply) => process.send?.(m);

const ackQueue = new Set<Client>();
let ackFlushScheduled = false;
const flushAcks = () => {
  ackFlushScheduled = false;
  for (const c of ackQueue) {
    if (c.acks && c.ws?.readyState === WebSocket.OPEN) {
      c.ws.send(`{"type":"ack","ids":${JSON.stringify(c.acks)}}`);
      acksSent += c.acks.length;
    }
    c.acks = undefined;
  }
  ackQueue.clear();
};

function onFrame(c: Client, data: Buffer): void {
  const at = nowMs();
  // Only message frames matter here; welcome, pong and the like are skipped unparsed.
  if (data.length < 20 || data.toString('latin1', 0, 18) !== '{"type":"message",') return;
  const f = JSON.parse(data.toString()) as { id: string; persistent: boolean; payload?: { t?: number } };
  if (f.persistent) {
    (c.acks ??= []).push(f.id);
    ackQueue.add(c);
    if (!ackFlushScheduled) {
      ackFlushScheduled = true;
      setImmediate(flushAcks);
    }
  }
  if (!recording) return;
  const t = f.payload?.t;
  if (typeof t !== 'number') {
    foreign++;
    return;
  }
  const key = `${f.id}|${c.idx}`;
  if (seen.has(key)) {
    duplicates++;
    return;
  }
  seen.add(key);
  const ms = at - t;
  hist.recordMs(ms);
  recording.tick.recordMs(ms);
  const sec = Math.floor((at - recording.startedAt) / 1000);
  perSecond[sec] = (perSecond[sec] ?? 0) + 1;
  lastReceiptAt = at;
}

async function tokenFor(user: string): Promise<string> {
  const cfg = init!;
  signingKey ??= (await importJWK(cfg.privateJwk, 'ES256')) as CryptoKey;
  return new SignJWT({ app: cfg.app, dev: 'd' })
    .setProtectedHeader({ alg: 'ES256', kid: cfg.kid, typ: 'JWT' })
    .setSubject(user)
    .setIssuer(TOKEN_ISSUER)
    .setAudience(TOKEN_AUDIENCE)
    .setIssuedAt()
    .setExpirationTime('4h')
    .sign(signingKey);
}

function open(c: Client, timeoutMs: number): Promise<void> {
  const cfg = init!;
  const localAddress = cfg.addresses[Math.floor(c.idx / cfg.perAddress) % cfg.addresses.length];
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${c.url}?token=${encodeURIComponent(c.token)}`, { localAddress, perMessageDeflate: false, handshakeTimeout: timeoutMs });
    c.ws = ws;
    c.away = false;
    ws.once('unexpected-response', (_req, res) => {
      ws.terminate();
      reject(new Error(`http-${res.statusCode}`));
    });
    ws.once('error', (err: NodeJS.ErrnoException) => reject(new Error(err.code ?? err.message)));
    ws.once('open', () => resolve());
    ws.on('message', (data: Buffer) => onFrame(c, data));
    ws.once('close', (code) => {
      if (c.ws === ws) c.ws = undefined;
      if (!c.away && !shuttingDown) {
        closedUnexpectedly++;
        closeCodes[code] = (closeCodes[code] ?? 0) + 1;
      }
    });
  });
}

/** Attempts per client before it counts as failed; an SDK retries too. */
const CONNECT_ATTEMPTS = 4;
const RETRY_BASE_MS = 250;

/** Runs `open` for `list` with bounded concurrency, retrying a failed client with jittered backoff. */
async function openAll(list: Client[], concurrency: number, timeoutMs: number): Promise<ConnectResult> {
  const started = performance.now();
  const errors: Record<string, number> = {};
  const retried: Record<string, number> = {};
  let ok = 0;
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, list.length) }, async () => {
      while (next < list.length) {
        const c = list[next++]!;
        connecting++;
        try {
          for (let attempt = 1; ; attempt++) {
            try {
              if (!c.token) c.token = await tokenFor(c.user);
              await open(c, timeoutMs);
              ok++;
              break;
            } catch (err) {
              const code = (err as Error).message.slice(0, 60);
              c.ws?.terminate();
              c.away = true;
              if (attempt >= CONNECT_ATTEMPTS) {
                errors[code] = (errors[code] ?? 0) + 1;
                break;
              }
              retried[code] = (retried[code] ?? 0) + 1;
              await new Promise((r) => setTimeout(r, RETRY_BASE_MS * 2 ** (attempt - 1) * (0.5 + Math.random())));
            }
          }
        } finally {
          connecting--;
        }
      }
    }),
  );
  return { ok, failed: list.length - ok, ms: performance.now() - started, errors, retried };
}

function connect(range: ClientRange, concurrency: number, timeoutMs: number): Promise<ConnectResult> {
  const list: Client[] = [];
  for (let i = range.from; i < range.from + range.count; i++) {
    const c: Client = {
      idx: i,
      user: `${range.userPrefix}${i}`,
      url: range.urls[i % range.urls.length]!,
      token: '',
      ws: undefined,
      away: false,
      acks: undefined,
    };
    clients.push(c);
    list.push(c);
  }
  return openAll(list, concurrency, timeoutMs);
}

function stats(): WorkerStats {
  return {
    open: clients.filter((c) => c.ws?.readyState === WebSocket.OPEN).length,
    connecting,
    closedUnexpectedly,
    closeCodes,
    rssBytes: process.memoryUsage().rss,
  };
}

const tickTimer = setInterval(() => {
  if (!recording) return;
  send({ type: 'tick', label: recording.label, second: recording.tickSecond++, histogram: recording.tick.encode() });
  recording.tick = new LatencyHistogram();
}, 1000);
tickTimer.unref();

async function handle(m: ParentCommand): Promise<unknown> {
  switch (m.cmd) {
    case 'init':
      init = m;
      return { pid: process.pid };
    case 'connect':
      return connect(m.range, m.concurrency, m.timeoutMs);
    case 'record':
      hist = new LatencyHistogram();
      seen = new Set();
      duplicates = foreign = acksSent = 0;
      perSecond = [];
      lastReceiptAt = 0;
      recording = { label: m.label, startedAt: nowMs(), tick: new LatencyHistogram(), tickSecond: 0 };
      return { startedAt: recording.startedAt };
    case 'peek':
      return { unique: seen.size, lastReceiptAt };
    case 'collect': {
      const out: CollectResult = {
        histogram: hist.encode(),
        unique: seen.size,
        duplicates,
        foreign,
        acksSent,
        perSecond: Array.from(perSecond, (v) => v ?? 0),
        lastReceiptAt,
      };
      recording = undefined;
      seen = new Set();
      return out;
    }
    case 'drop': {
      // The same share of every pusher's clients: a network blip is not aligned with the pushers.
      const byUrl = new Map<string, Client[]>();
      for (const c of clients) {
        if (c.ws?.readyState !== WebSocket.OPEN) continue;
        const list = byUrl.get(c.url) ?? [];
        list.push(c);
        byUrl.set(c.url, list);
      }
      const every = m.fraction > 0 ? 1 / m.fraction : Infinity;
      const users: string[] = [];
      for (const list of byUrl.values()) {
        for (let i = 0; i < list.length; i++) {
          if (Math.floor((i + 1) / every) === Math.floor(i / every)) continue;
          const c = list[i]!;
          c.away = true;
          c.ws!.terminate();
          users.push(c.user);
        }
      }
      return { users };
    }
    case 'orphans': {
      const users: string[] = [];
      for (const c of clients) {
        if (c.url !== m.url || c.away || c.ws?.readyState === WebSocket.OPEN) continue;
        c.away = true;
        c.ws?.terminate();
        users.push(c.user);
      }
      return { users };
    }
    case 'reconnect': {
      const away = clients.filter((c) => c.away);
      const urls = m.urls;
      if (urls && urls.length > 0) away.forEach((c) => !urls.includes(c.url) && (c.url = urls[c.idx % urls.length]!));
      return openAll(away, m.concurrency, m.timeoutMs);
    }
    case 'stats':
      return stats();
    case 'close': {
      shuttingDown = true;
      for (const c of clients) {
        c.away = true;
        c.ws?.terminate();
      }
      setTimeout(() => process.exit(0), 50);
      return { closed: clients.length };
    }
  }
}

process.on('message', (m: ParentCommand) => {
  handle(m).then(
    (data) => send({ type: 'reply', req: m.req, ok: true, data }),
    (err: Error) => send({ type: 'reply', req: m.req, ok: false, error: err.stack ?? err.message }),
  );
});
process.on('disconnect', () => process.exit(0));
