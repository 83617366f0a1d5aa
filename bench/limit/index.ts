/**
 * limit: the ceiling of the parts on this machine, in the same run, so our
 * figures can be read as a fraction of what the parts allow:
 *   (a) a bare `ws` server (no pipeline) holding N idle clients from
 *       load-generator children: RSS and heap per idle connection, and one
 *       broadcast through ws.send and through raw writes of a pre-built frame
 *       (time to 99/100% at the clients, deliveries/s);
 *   (b) Kafka's own ProducerPerformance and ConsumerPerformance (kafka-tools
 *       from the jars infra/ resolves) on a throwaway topic of the shared broker;
 *   (c) redis-benchmark against the shared Redis (a spare db number): SET, GET,
 *       HSET, one at a time and pipelined (-P 16).
 *
 *   npm run bench -- limit [--quick] [--clients 16000] [--broadcasts 3]
 *     [--burst-clients 1000] [--burst-messages 20] (0: no burst; frame coalescing off/on)
 *     [--kafka-records 1000000] [--redis-requests 200000] [--parts ws,kafka,redis]
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { infraUp } from '../../infra/stack.js';
import { kafkaLibsDir } from '../../infra/kafka.js';
import { stack as infra } from '../../test/support/env.js';
import { freePort } from '../../test/support/services.js';
import { writeLineChart } from '../lib/chart.js';
import { forkTs, nextMessage, spawnGroup, stopGroup } from '../lib/procs.js';
import { writeReport } from '../lib/results.js';
import { runStandalone } from '../lib/standalone.js';
import type { Scenario, ScenarioReport } from '../lib/types.js';
import { ClientPool } from '../peers/clients.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const num = (v: unknown, d: number) => (v === undefined || v === true ? d : Number(v));
const round = (v: number, d = 1) => Math.round(v * 10 ** d) / 10 ** d;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

/** Runs a command in its own process group, bounded in time; resolves with stdout, rejects with the tail of its output. */
function runTool(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnGroup(cmd, args);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => void stopGroup(child, 'SIGKILL', 0), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(
            `${path.basename(cmd)} ${args.slice(0, 2).join(' ')} failed (${code ?? signal}${signal === 'SIGKILL' ? `, over ${timeoutMs} ms` : ''}): ${(err || out).trim().split('\n').slice(-3).join(' | ')}`,
          ),
        );
    });
  });
}

interface WsResult {
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

async function wsLimit(n: number, broadcasts: number, burstCfg: { clients: number; messages: number }, log: (l: string) => void): Promise<WsResult> {
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
        if (i === broadcasts - 1) {
          const step = Math.max(1, Math.floor(a.length / 200));
          cdf[mode] = [
            [0, 0],
            ...a.flatMap((ms, j): Array<[number, number]> => (j % step === 0 || j === a.length - 1 ? [[round(ms), round(((j + 1) / conn.ok) * 100)]] : [])),
          ];
        }
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

interface KafkaResult {
  topic: string;
  records: number;
  recordSize: number;
  producer: {
    recordsPerSec: number;
    mbPerSec: number;
    avgLatencyMs: number;
    maxLatencyMs: number;
    p50Ms: number;
    p95Ms: number;
    p99Ms: number;
    p999Ms: number;
    line: string;
  };
  consumer: { recordsPerSec: number; mbPerSec: number; fetchRecordsPerSec: number; rebalanceMs: number; line: string };
}

async function kafkaLimit(records: number, log: (l: string) => void): Promise<KafkaResult> {
  const topic = `bench-limit-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const brokers = infra.kafkaBrokers.join(',');
  const kafka = new Kafka({ clientId: 'bench-limit', brokers: infra.kafkaBrokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-limit-'));
  const log4j = path.join(tmp, 'log4j.properties');
  writeFileSync(
    log4j,
    'log4j.rootLogger=WARN, stderr\nlog4j.appender.stderr=org.apache.log4j.ConsoleAppender\nlog4j.appender.stderr.Target=System.err\nlog4j.appender.stderr.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stderr.layout.ConversionPattern=%p %m%n\n',
  );
  const jvm = ['-Xmx512m', `-Dlog4j.configuration=file:${log4j}`, '-cp', `${kafkaLibsDir}${path.sep}*`];
  try {
    await admin.createTopics({ topics: [{ topic, numPartitions: 4, replicationFactor: 1 }], waitForLeaders: true });
    log(`limit/kafka: ProducerPerformance, ${records} records of 300 B to ${topic}`);
    const pout = await runTool(
      'java',
      [
        ...jvm,
        'org.apache.kafka.tools.ProducerPerformance',
        '--topic',
        topic,
        '--num-records',
        String(records),
        '--record-size',
        '300',
        '--throughput',
        '-1',
        '--producer-props',
        `bootstrap.servers=${brokers}`,
        'acks=all',
        'linger.ms=5',
        'batch.size=65536',
      ],
      180_000,
    );
    const pline =
      pout
        .trim()
        .split('\n')
        .filter((l) => l.includes('records sent'))
        .at(-1) ?? '';
    const pm =
      /([\d.]+) records\/sec \(([\d.]+) MB\/sec\), ([\d.]+) ms avg latency, ([\d.]+) ms max latency, (\d+) ms 50th, (\d+) ms 95th, (\d+) ms 99th, (\d+) ms 99.9th/.exec(
        pline,
      );
    if (!pm) throw new Error(`cannot read ProducerPerformance output: ${pout.slice(-300)}`);
    const producer = {
      recordsPerSec: Math.round(Number(pm[1])),
      mbPerSec: Number(pm[2]),
      avgLatencyMs: Number(pm[3]),
      maxLatencyMs: Number(pm[4]),
      p50Ms: Number(pm[5]),
      p95Ms: Number(pm[6]),
      p99Ms: Number(pm[7]),
      p999Ms: Number(pm[8]),
      line: pline.trim(),
    };
    log(`limit/kafka: producer ${producer.recordsPerSec} records/s (${producer.mbPerSec} MB/s), p99 ${producer.p99Ms} ms`);

    log('limit/kafka: ConsumerPerformance');
    const cout = await runTool(
      'java',
      [
        ...jvm,
        'org.apache.kafka.tools.ConsumerPerformance',
        '--bootstrap-server',
        brokers,
        '--topic',
        topic,
        '--messages',
        String(records),
        '--group',
        `${topic}-perf`,
        '--timeout',
        '30000',
      ],
      180_000,
    );
    const lines = cout.trim().split('\n');
    const hi = lines.findIndex((l) => l.includes('nMsg.sec'));
    const head = (lines[hi] ?? '').split(',').map((s) => s.trim());
    const vals = (lines[hi + 1] ?? '').split(',').map((s) => s.trim());
    const col = (name: string) => Number(vals[head.indexOf(name)]);
    if (hi < 0 || !Number.isFinite(col('nMsg.sec'))) throw new Error(`cannot read ConsumerPerformance output: ${cout.slice(-300)}`);
    const consumer = {
      recordsPerSec: Math.round(col('nMsg.sec')),
      mbPerSec: col('MB.sec'),
      fetchRecordsPerSec: Math.round(col('fetch.nMsg.sec')),
      rebalanceMs: col('rebalance.time.ms'),
      line: `${lines[hi]} / ${lines[hi + 1]}`,
    };
    log(`limit/kafka: consumer ${consumer.recordsPerSec} records/s (${consumer.fetchRecordsPerSec}/s excluding the group join), ${consumer.mbPerSec} MB/s`);
    return { topic, records, recordSize: 300, producer, consumer };
  } finally {
    await admin.deleteTopics({ topics: [topic], timeout: 10_000 }).catch(() => undefined);
    await admin.deleteGroups([`${topic}-perf`]).catch(() => undefined);
    await admin.disconnect();
    rmSync(tmp, { recursive: true, force: true });
  }
}

interface RedisRow {
  rps: number;
  p50Ms: number;
  p99Ms: number;
}
type RedisResult = { requests: number; db: number; clients: number } & Record<'single' | 'pipelined16', Record<'SET' | 'GET' | 'HSET', RedisRow>>;

async function redisLimit(requests: number, log: (l: string) => void): Promise<RedisResult> {
  const u = new URL(infra.redisUrl);
  const host = u.hostname || '127.0.0.1';
  const port = u.port || '6379';
  const db = 13;
  const bench = async (pipeline: number, n: number) => {
    const out = await runTool(
      'redis-benchmark',
      ['-h', host, '-p', port, '--dbnum', String(db), '-c', '50', '-n', String(n), '-P', String(pipeline), '-t', 'set,get,hset', '--csv'],
      120_000,
    );
    const rows: Partial<Record<'SET' | 'GET' | 'HSET', RedisRow>> = {};
    const lines = out
      .trim()
      .split('\n')
      .map((l) => l.split(',').map((s) => s.replace(/"/g, '')));
    const head = lines[0] ?? [];
    for (const l of lines.slice(1)) {
      const name = l[0] as 'SET' | 'GET' | 'HSET';
      if (!['SET', 'GET', 'HSET'].includes(name)) continue;
      rows[name] = {
        rps: Math.round(Number(l[head.indexOf('rps')])),
        p50Ms: Number(l[head.indexOf('p50_latency_ms')]),
        p99Ms: Number(l[head.indexOf('p99_latency_ms')]),
      };
    }
    if (!rows.SET || !rows.GET || !rows.HSET) throw new Error(`cannot read redis-benchmark output: ${out.slice(0, 300)}`);
    return rows as Record<'SET' | 'GET' | 'HSET', RedisRow>;
  };
  try {
    log(`limit/redis: redis-benchmark -n ${requests} (SET, GET, HSET), then -P 16 -n ${requests * 5}`);
    const single = await bench(1, requests);
    const pipelined16 = await bench(16, requests * 5);
    log(
      `limit/redis: SET ${single.SET.rps}/s, GET ${single.GET.rps}/s, HSET ${single.HSET.rps}/s; pipelined x16: SET ${pipelined16.SET.rps}/s, GET ${pipelined16.GET.rps}/s, HSET ${pipelined16.HSET.rps}/s`,
    );
    return { requests, db, clients: 50, single, pipelined16 };
  } finally {
    // redis-benchmark without -r uses these fixed keys; remove them from the spare db.
    await runTool('redis-cli', ['-h', host, '-p', port, '-n', String(db), 'DEL', 'key:__rand_int__', 'myhash'], 10_000).catch(() => undefined);
  }
}

export const run: Scenario = async (opts) => {
  const { quick, args, outDir, log } = opts;
  const cfg = {
    clients: num(args.clients, quick ? 8000 : 16_000),
    broadcasts: num(args.broadcasts, quick ? 2 : 3),
    burstClients: num(args['burst-clients'], 1000),
    burstMessages: num(args['burst-messages'], 20),
    kafkaRecords: num(args['kafka-records'], quick ? 200_000 : 1_000_000),
    redisRequests: num(args['redis-requests'], quick ? 50_000 : 200_000),
    parts: String(typeof args.parts === 'string' ? args.parts : 'ws,kafka,redis').split(','),
  };
  const loadBefore = os.loadavg().map((x) => round(x, 2));
  await infraUp({ log: (l) => log(`[infra] ${l}`) });
  const errors: Record<string, string> = {};
  const attempt = async <T>(part: string, f: () => Promise<T>): Promise<T | undefined> => {
    if (!cfg.parts.includes(part)) return undefined;
    try {
      return await f();
    } catch (err) {
      errors[part] = err instanceof Error ? err.message : String(err);
      log(`limit/${part}: FAILED: ${errors[part]}`);
      return undefined;
    }
  };
  const ws = await attempt('ws', () => wsLimit(cfg.clients, cfg.broadcasts, { clients: cfg.burstClients, messages: cfg.burstMessages }, log));
  const kafka = await attempt('kafka', () => kafkaLimit(cfg.kafkaRecords, log));
  const redis = await attempt('redis', () => redisLimit(cfg.redisRequests, log));

  const charts: string[] = [];
  if (ws) {
    writeLineChart(path.join(outDir, 'limit-ws-broadcast.svg'), {
      title: `Bare ws server: one broadcast to ${ws.connected} clients, % received`,
      xLabel: 'ms since the write loop started',
      yLabel: '% of clients',
      series: [
        { name: 'ws.send', points: ws.cdf.send },
        { name: 'raw frame', points: ws.cdf.raw },
        { name: 'pusher write path', points: ws.cdf.pusher },
      ],
    });
    charts.push('limit-ws-broadcast.svg');
  }
  const summary: string[] = [];
  if (ws) {
    summary.push(
      `bare ws, ${ws.connected} idle clients: ${ws.rssPerConnKB} KB RSS and ${ws.heapPerConnKB} KB heap per connection${ws.gcExposed ? ' (after GC)' : ''}; connect ${ws.connectPerSec}/s (issue reference at 16,000: 5.7 KB RSS, 2.5 KB heap)`,
    );
    summary.push(
      `bare ws broadcast to ${ws.connected}: ws.send 99% ${ws.send.ms99} ms, 100% ${ws.send.ms100 ?? 'not reached'} ms = ${ws.send.deliveriesPerSec ?? '-'} deliveries/s; raw pre-built frame 99% ${ws.raw.ms99} ms, 100% ${ws.raw.ms100 ?? 'not reached'} ms = ${ws.raw.deliveriesPerSec ?? '-'} deliveries/s (median of ${cfg.broadcasts}; issue reference at 16,000: ~340 ms ws.send, ~220 ms raw)`,
    );
    summary.push(
      `the pusher's write path (Connection.send of one pre-built frame) on the same server: 99% ${ws.pusher.ms99} ms, 100% ${ws.pusher.ms100 ?? 'not reached'} ms = ${ws.pusher.deliveriesPerSec ?? '-'} deliveries/s` +
        (ws.pusher.deliveriesPerSec && ws.raw.deliveriesPerSec ? ` = ${round(ws.pusher.deliveriesPerSec / ws.raw.deliveriesPerSec, 2)}x the raw frame` : ''),
    );
    if (ws.burst) {
      const b = ws.burst;
      summary.push(
        `burst of ${b.messagesPerClient} messages to each of ${b.clients} clients in one turn (Connection.send): coalescing off ${b.off.messagesPerSec} messages/s (100% at ${b.off.ms100} ms, server ${b.off.loopUsPerMessage} us/message), ` +
          `on ${b.on.messagesPerSec} messages/s (100% at ${b.on.ms100} ms, server ${b.on.loopUsPerMessage} us/message) = ${round(b.on.messagesPerSec / Math.max(1, b.off.messagesPerSec), 2)}x delivered, ${round(b.off.loopMs / Math.max(0.001, b.on.loopMs), 2)}x less server write time`,
      );
    }
  }
  if (kafka) {
    summary.push(
      `Kafka ProducerPerformance (${kafka.records} x ${kafka.recordSize} B, acks=all, 4 partitions): ${kafka.producer.recordsPerSec} records/s, ${kafka.producer.mbPerSec} MB/s, p50 ${kafka.producer.p50Ms} / p99 ${kafka.producer.p99Ms} ms`,
    );
    summary.push(
      `Kafka ConsumerPerformance: ${kafka.consumer.recordsPerSec} records/s (${kafka.consumer.fetchRecordsPerSec}/s excluding the group join), ${kafka.consumer.mbPerSec} MB/s`,
    );
  }
  if (redis) {
    summary.push(
      `redis-benchmark (50 clients): SET ${redis.single.SET.rps}/s, GET ${redis.single.GET.rps}/s, HSET ${redis.single.HSET.rps}/s; pipelined -P 16: SET ${redis.pipelined16.SET.rps}/s, GET ${redis.pipelined16.GET.rps}/s, HSET ${redis.pipelined16.HSET.rps}/s`,
    );
  }
  for (const [part, e] of Object.entries(errors)) summary.push(`${part}: FAILED: ${e}`);
  const loadAfter = os.loadavg().map((x) => round(x, 2));
  summary.push(`machine load average (1/5/15 min): ${loadBefore.join('/')} before, ${loadAfter.join('/')} after`);

  const report: ScenarioReport = {
    scenario: 'limit',
    options: { quick, ...cfg },
    summary,
    metrics: {
      loadAverageBefore: loadBefore,
      loadAverageAfter: loadAfter,
      ws: ws ? { ...ws, cdf: undefined } : null,
      kafka: kafka ?? null,
      redis: redis ?? null,
      errors,
      wsClients: ws?.connected ?? null,
      wsRssPerConnKB: ws?.rssPerConnKB ?? null,
      wsHeapPerConnKB: ws?.heapPerConnKB ?? null,
      wsBroadcastSendMs100: ws?.send.ms100 ?? null,
      wsBroadcastRawMs100: ws?.raw.ms100 ?? null,
      wsBroadcastSendPerSec: ws?.send.deliveriesPerSec ?? null,
      wsBroadcastRawPerSec: ws?.raw.deliveriesPerSec ?? null,
      wsBroadcastPusherPathPerSec: ws?.pusher.deliveriesPerSec ?? null,
      wsBurstCoalesceOffPerSec: ws?.burst?.off.messagesPerSec ?? null,
      wsBurstCoalesceOnPerSec: ws?.burst?.on.messagesPerSec ?? null,
      kafkaProducerRecordsPerSec: kafka?.producer.recordsPerSec ?? null,
      kafkaProducerP99Ms: kafka?.producer.p99Ms ?? null,
      kafkaConsumerRecordsPerSec: kafka?.consumer.recordsPerSec ?? null,
      kafkaConsumerFetchRecordsPerSec: kafka?.consumer.fetchRecordsPerSec ?? null,
      redisSetPerSec: redis?.single.SET.rps ?? null,
      redisGetPerSec: redis?.single.GET.rps ?? null,
      redisHsetPerSec: redis?.single.HSET.rps ?? null,
      redisSetP16PerSec: redis?.pipelined16.SET.rps ?? null,
      redisGetP16PerSec: redis?.pipelined16.GET.rps ?? null,
      redisHsetP16PerSec: redis?.pipelined16.HSET.rps ?? null,
    },
    charts,
  };
  writeReport(outDir, report);
  return report;
};

if (import.meta.url === `file://${process.argv[1]}`) runStandalone('limit', run);
