/**
 * limit (a): a bare `ws` server (no pipeline, wsServer.ts) holding N idle
 * clients from load-generator children: RSS and heap per idle connection, one
 * broadcast through ws.send, raw writes of a pre-built frame and the pusher's
 * write path, and bursts with frame coalescing off and on.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/support/services.js';
import { arrivalCdf } from '../lib/chart.js';
import { forkTs, nextMessage, stopGroup } from '../lib/procs.js';
import { median, round, sleep } from '../lib/scenarioKit.js';
import { ClientPool } from '../peers/clients.js';

const here = path.dirname(fileURLToPath(import.meta.url));

export interface WsResult {
  clients: number;
  connected: number;
  connectPerSec: number;
  rssPerConnKB: number;
  heapPerConnKB: number;
  gcExposed: boolean;
  send: BroadcastSummary;
  raw: BroadcastSummary;
  /** The pusher's own write path (Connection.send of a pre-built WireFrame) on the same server and clients. */
  pusher: BroadcastSummary;
  cdf: Record<BroadcastMode, Array<[number, number]>>;
  /** Bursts of `messages` frames to each of `clients` clients in one turn, frame coalescing off and on. */
  burst: { clients: number; messagesPerClient: number; off: BurstSummary; on: BurstSummary } | null;
}

type BroadcastMode = 'send' | 'raw' | 'pusher';
interface BroadcastSummary {
  ms99: number;
  ms100: number | null;
  deliveriesPerSec: number | null;
  loopMs: number;
  runs: number[];
}
interface BurstSummary {
  /** Median time from the burst's start until the last message was received, and messages/s over it. */
  ms100: number;
  messagesPerSec: number;
  /** Median server time to write the burst (the end-of-turn flush included), and per message. */
  loopMs: number;
  loopUsPerMessage: number;
  runs: number[];
}

export async function wsLimit(n: number, broadcasts: number, burstCfg: { clients: number; messages: number }, log: (l: string) => void): Promise<WsResult> {
  const port = await freePort();
  const server = forkTs(path.join(here, 'wsServer.ts'), [], { execArgv: ['--expose-gc', '--import', 'tsx'], env: { ...process.env, PORT: String(port) } });
  let pool: ClientPool | undefined;
  try {
    await nextMessage(server, (m) => m.ev === 'ready', 30_000, 'bare ws server start');
    const mem = async () => (
      server.send({ cmd: 'mem' }),
      nextMessage<{ rss: number; heapUsed: number; connections: number; gc: boolean }>(server, (m) => m.ev === 'mem', 30_000, 'memory')
    );
    await sleep(1000);
    const before = await mem();
    pool = await ClientPool.start(n);
    log(`limit/ws: connecting ${n} clients from ${pool.processes} processes`);
    const conn = await pool.connect({ kind: 'bare', endpoints: [`ws://127.0.0.1:${port}`], n, concurrency: 100 });
    if (conn.ok === 0) throw new Error(`no client connected: ${conn.firstError}`);
    log(`limit/ws: ${conn.ok} connected (${conn.failed} failed) at ${Math.round(conn.perSecond)}/s`);
    await sleep(2000);
    const after = await mem();
    const rssPerConnKB = round((after.rss - before.rss) / conn.ok / 1024, 2);
    const heapPerConnKB = round((after.heapUsed - before.heapUsed) / conn.ok / 1024, 2);
    log(`limit/ws: ${rssPerConnKB} KB RSS, ${heapPerConnKB} KB heap per idle connection (${after.connections} held)`);

    const modes = ['send', 'raw', 'pusher'] as const;
    const runs: Record<BroadcastMode, Array<{ ms99: number; ms100: number | null; loopMs: number }>> = { send: [], raw: [], pusher: [] };
    const cdf: WsResult['cdf'] = { send: [], raw: [], pusher: [] };
    let run = 0;
    for (let i = 0; i < broadcasts; i++) {
      for (const mode of modes) {
        run++;
        await pool.reset(run);
        server.send({ cmd: 'broadcast', mode, run });
        const b = await nextMessage<{ loopMs: number }>(server, (m) => m.ev === 'broadcast', 30_000, 'broadcast');
        await pool.waitFor((c) => c.broadcast >= conn.ok, { idleMs: 3000, timeoutMs: 30_000 });
        const a = (await pool.collect()).arrivals;
        const ms100 = a.length >= conn.ok ? a[a.length - 1]! : null;
        runs[mode].push({ ms99: a[Math.ceil(0.99 * conn.ok) - 1] ?? NaN, ms100, loopMs: b.loopMs });
        if (i === broadcasts - 1) cdf[mode] = arrivalCdf(a, conn.ok);
        await sleep(300);
      }
    }
    const bursts: Record<'off' | 'on', Array<{ ms100: number; loopMs: number }>> = { off: [], on: [] };
    const burstClients = Math.min(burstCfg.clients, conn.ok);
    const burstTotal = burstClients * burstCfg.messages;
    if (burstCfg.messages > 0) {
      for (let i = 0; i < broadcasts; i++) {
        // Alternate the order, so neither setting always runs on a warmer process.
        for (const coalesce of i % 2 === 0 ? [false, true] : [true, false]) {
          run++;
          await pool.reset(run);
          server.send({ cmd: 'burst', run, clients: burstClients, messages: burstCfg.messages, coalesce });
          const b = await nextMessage<{ loopMs: number; messages: number }>(server, (m) => m.ev === 'burst', 60_000, 'burst');
          await pool.waitFor((c) => c.received >= b.messages, { idleMs: 3000, timeoutMs: 60_000 });
          const got = await pool.collect();
          if (got.received < b.messages) throw new Error(`burst: ${got.received}/${b.messages} messages received`);
          bursts[coalesce ? 'on' : 'off'].push({ ms100: got.hist.summary().max, loopMs: b.loopMs });
          await sleep(300);
        }
      }
    }
    const burstSum = (k: 'off' | 'on'): BurstSummary => {
      const ms100 = round(median(bursts[k].map((x) => x.ms100)));
      const loopMs = round(median(bursts[k].map((x) => x.loopMs)));
      return {
        ms100,
        messagesPerSec: Math.round(burstTotal / (ms100 / 1000)),
        loopMs,
        loopUsPerMessage: round((loopMs * 1000) / burstTotal, 2),
        runs: bursts[k].map((x) => round(x.ms100)),
      };
    };
    const burst = burstCfg.messages > 0 ? { clients: burstClients, messagesPerClient: burstCfg.messages, off: burstSum('off'), on: burstSum('on') } : null;
    if (burst) {
      log(
        `limit/ws: burst of ${burst.messagesPerClient} messages to each of ${burst.clients} clients through Connection.send: coalescing off 100% ${burst.off.ms100} ms (${burst.off.messagesPerSec}/s, server ${burst.off.loopUsPerMessage} us/message), ` +
          `on 100% ${burst.on.ms100} ms (${burst.on.messagesPerSec}/s, server ${burst.on.loopUsPerMessage} us/message)`,
      );
    }

    const sum = (mode: BroadcastMode) => {
      const r = runs[mode];
      const full = r.every((x) => x.ms100 !== null);
      const ms100 = full ? round(median(r.map((x) => x.ms100!))) : null;
      return {
        ms99: round(median(r.map((x) => x.ms99))),
        ms100,
        deliveriesPerSec: ms100 ? Math.round(conn.ok / (ms100 / 1000)) : null,
        loopMs: round(median(r.map((x) => x.loopMs))),
        runs: r.map((x) => (x.ms100 === null ? NaN : round(x.ms100))),
      };
    };
    const res: WsResult = {
      clients: n,
      connected: conn.ok,
      connectPerSec: Math.round(conn.perSecond),
      rssPerConnKB,
      heapPerConnKB,
      gcExposed: after.gc,
      send: sum('send'),
      raw: sum('raw'),
      pusher: sum('pusher'),
      cdf,
      burst,
    };
    log(
      `limit/ws: broadcast to ${conn.ok}: ws.send 100% ${res.send.ms100} ms (${res.send.deliveriesPerSec}/s, loop ${res.send.loopMs} ms), raw frame 100% ${res.raw.ms100} ms (${res.raw.deliveriesPerSec}/s, loop ${res.raw.loopMs} ms), ` +
        `pusher write path 100% ${res.pusher.ms100} ms (${res.pusher.deliveriesPerSec}/s, loop ${res.pusher.loopMs} ms)`,
    );
    return res;
  } finally {
    await pool?.close().catch(() => undefined);
    await stopGroup(server, 'SIGTERM', 3000);
  }
}
