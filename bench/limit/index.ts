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
import path from 'node:path';
import { infraUp } from '../../infra/stack.js';
import { writeLineChart } from '../lib/chart.js';
import { writeReport } from '../lib/results.js';
import { loadAverage, num, round } from '../lib/scenarioKit.js';
import { runStandalone } from '../lib/standalone.js';
import type { Scenario, ScenarioReport } from '../lib/types.js';
import { kafkaLimit } from './kafkaLimit.js';
import { redisLimit } from './redisLimit.js';
import { wsLimit } from './wsLimit.js';

export const run: Scenario = async (opts) => {
  const { quick, args, outDir, log } = opts;
  const cfg = {
    clients: num(opts, 'clients', 8000, 16_000),
    broadcasts: num(opts, 'broadcasts', 2, 3),
    burstClients: num(opts, 'burst-clients', 1000, 1000),
    burstMessages: num(opts, 'burst-messages', 20, 20),
    kafkaRecords: num(opts, 'kafka-records', 200_000, 1_000_000),
    redisRequests: num(opts, 'redis-requests', 50_000, 200_000),
    parts: String(typeof args.parts === 'string' ? args.parts : 'ws,kafka,redis').split(','),
  };
  const loadBefore = loadAverage();
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
  const loadAfter = loadAverage();
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
