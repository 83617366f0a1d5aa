/**
 * limit (b): Kafka's own ProducerPerformance and ConsumerPerformance
 * (kafka-tools from the jars infra/ resolves) on a throwaway topic of the
 * shared broker.
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { kafkaLibsDir } from '../../infra/kafka.js';
import { stack as infra } from '../../test/support/env.js';
import { runTool } from './runTool.js';

export interface KafkaResult {
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

export async function kafkaLimit(records: number, log: (l: string) => void): Promise<KafkaResult> {
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
