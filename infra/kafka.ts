import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { infraPath, repoRoot } from './paths.js';
import { assertPortsFree, livePid, pidControls, runCommand, spawnDetached, waitReady, withProgress, type Log, type ServerHandle } from './process.js';

export const KAFKA_VERSION = '3.9.1';
export const kafkaLibsDir = infraPath('kafka', 'libs');
const brokerJar = path.join(kafkaLibsDir, `kafka_2.13-${KAFKA_VERSION}.jar`);
const marker = path.join(kafkaLibsDir, `.complete-${KAFKA_VERSION}`);

export interface KafkaOptions {
  dir: string;
  port: number;
  controllerPort: number;
  heapMb?: number;
  log: Log;
}

export interface KafkaHandle extends ServerHandle {
  brokers: string;
}

export function kafkaProvisioned(): boolean {
  return fs.existsSync(marker) && fs.existsSync(brokerJar);
}

/** Fetches the broker jars with Maven into .infra/kafka/libs (once; ~/.m2 caches them too). */
export async function provisionKafka(log: Log): Promise<void> {
  if (kafkaProvisioned()) return;
  log('kafka: resolving jars with Maven (first run)...');
  fs.mkdirSync(kafkaLibsDir, { recursive: true });
  const args = [
    '-q',
    '-B',
    '-f',
    path.join(repoRoot, 'infra', 'pom.xml'),
    'dependency:copy-dependencies',
    `-DoutputDirectory=${kafkaLibsDir}`,
    '-DincludeScope=runtime',
  ];
  await withProgress(log, 'kafka: resolving jars with Maven', () => runCommand('mvn', args, { logFile: infraPath('kafka', 'mvn.log') }));
  if (!fs.existsSync(brokerJar)) throw new Error(`Maven finished but ${brokerJar} is missing`);
  fs.writeFileSync(marker, `${new Date().toISOString()}\n`);
  log(`kafka: ${fs.readdirSync(kafkaLibsDir).filter((f) => f.endsWith('.jar')).length} jars in ${kafkaLibsDir}`);
}

const classpath = (): string => `${kafkaLibsDir}${path.sep}*`;
export const kafkaPidFile = (dir: string): string => path.join(dir, 'kafka.pid');
/** Substring of the broker's command line that identifies the instance owning `dir`. */
export const kafkaCmdlineNeedles = (dir: string): string[] => ['kafka.Kafka', path.join(dir, 'server.properties')];

function writeConfig(opts: KafkaOptions): void {
  const { dir, port, controllerPort } = opts;
  const props = {
    'process.roles': 'broker,controller',
    'node.id': '1',
    'controller.quorum.voters': `1@127.0.0.1:${controllerPort}`,
    listeners: `PLAINTEXT://127.0.0.1:${port},CONTROLLER://127.0.0.1:${controllerPort}`,
    'advertised.listeners': `PLAINTEXT://127.0.0.1:${port}`,
    'controller.listener.names': 'CONTROLLER',
    'inter.broker.listener.name': 'PLAINTEXT',
    'listener.security.protocol.map': 'PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT',
    'log.dirs': path.join(dir, 'data'),
    'num.partitions': '4',
    'offsets.topic.replication.factor': '1',
    'offsets.topic.num.partitions': '8',
    'transaction.state.log.replication.factor': '1',
    'transaction.state.log.min.isr': '1',
    'group.initial.rebalance.delay.ms': '0',
    'auto.create.topics.enable': 'true',
    // After a kill -9 the restarted controller keeps the dead incarnation registered until its session
    // expires (default 9s, plus registration back-off ≈ 14s); shorter sessions make fault tests recover fast.
    'broker.session.timeout.ms': '3000',
    'broker.heartbeat.interval.ms': '500',
  };
  fs.writeFileSync(
    path.join(dir, 'server.properties'),
    Object.entries(props)
      .map(([k, v]) => `${k}=${v}`)
      .join('\n') + '\n',
  );
  fs.writeFileSync(
    path.join(dir, 'log4j.properties'),
    [
      'log4j.rootLogger=INFO, file',
      'log4j.appender.file=org.apache.log4j.RollingFileAppender',
      `log4j.appender.file.File=${path.join(dir, 'server.log')}`,
      'log4j.appender.file.MaxFileSize=50MB',
      'log4j.appender.file.MaxBackupIndex=2',
      'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
      'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
      '',
    ].join('\n'),
  );
}

function java(args: string[], dir: string): string {
  const res = spawnSync('java', args, { cwd: dir, encoding: 'utf8', timeout: 120_000 });
  if (res.status !== 0) {
    throw new Error(`java ${args.slice(-4).join(' ')} failed: ${res.error?.message ?? ''}${res.stderr}${res.stdout}`);
  }
  return res.stdout;
}

/** KRaft needs its log dir formatted with a cluster id before the first start only. */
function formatStorage(dir: string): void {
  if (fs.existsSync(path.join(dir, 'data', 'meta.properties'))) return;
  const log4j = `-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`;
  const clusterId = java(['-cp', classpath(), log4j, 'kafka.tools.StorageTool', 'random-uuid'], dir).trim();
  if (!/^[A-Za-z0-9_-]{22}$/.test(clusterId)) throw new Error(`unexpected cluster id from StorageTool: ${clusterId}`);
  java(['-cp', classpath(), log4j, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', path.join(dir, 'server.properties')], dir);
}

/** True when a Kafka broker answers a metadata request at 127.0.0.1:port. */
export async function kafkaAnswers(port: number, timeoutMs = 1500): Promise<boolean> {
  const kafka = new Kafka({
    clientId: 'infra-probe',
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.NOTHING,
    connectionTimeout: timeoutMs,
    requestTimeout: timeoutMs,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => {});
  }
}

/** Handle for a broker we started earlier (e.g. by another process), found via its pid file. */
export function kafkaHandle(dir: string, port: number, pid: number): KafkaHandle {
  const pidFile = kafkaPidFile(dir);
  return {
    brokers: `127.0.0.1:${port}`,
    ...pidControls(pid, pidFile),
  };
}

export async function startKafka(opts: KafkaOptions): Promise<KafkaHandle> {
  const { dir, port } = opts;
  const pidFile = kafkaPidFile(dir);
  fs.mkdirSync(path.join(dir, 'data'), { recursive: true });
  const running = livePid(pidFile, kafkaCmdlineNeedles(dir));
  if (running !== undefined) throw new Error(`kafka in ${dir} is already running (pid ${running})`);
  if (!kafkaProvisioned()) throw new Error('Kafka jars are missing: run provisionKafka() first');

  await assertPortsFree('kafka', [port, opts.controllerPort]);
  writeConfig(opts);
  formatStorage(dir);
  const child = await spawnDetached(
    'java',
    [
      `-Xmx${opts.heapMb ?? 512}m`,
      '-XX:+UseG1GC',
      '-Djava.awt.headless=true',
      '-cp',
      classpath(),
      `-Dlog4j.configuration=file:${path.join(dir, 'log4j.properties')}`,
      'kafka.Kafka',
      path.join(dir, 'server.properties'),
    ],
    { cwd: dir, logFile: path.join(dir, 'stdout.log'), pidFile },
  );
  const handle = kafkaHandle(dir, port, child.pid);
  try {
    await waitReady(`kafka on 127.0.0.1:${port}`, child.pid, () => kafkaAnswers(port), {
      timeoutMs: 60_000,
      logFiles: [path.join(dir, 'stdout.log'), path.join(dir, 'server.log')],
    });
  } catch (err) {
    await handle.kill();
    throw err;
  }
  return handle;
}
