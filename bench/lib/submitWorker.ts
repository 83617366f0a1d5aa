/**
 * The message source of a scenario, in its own process: submits bench
 * messages at a fixed rate (open loop, bounded in flight) over HTTP to the
 * collector or as Avro records on `push.events`. Every payload carries its
 * submission time `t` (wall-clock ms) and a sequence number `k`.
 */
import http from 'node:http';
import { pino } from 'pino';
import type { Producer } from 'kafkajs';
import { createKafka, createProducer } from '../../platform/kafka/kafka.js';
import { topicNames } from '../../protocol/topics.js';
import { encodeRecord } from '../../schemas/registry.js';
import { eventKey, toBusinessEvent } from '../../publisher/src/kafkaPublisher.js';
import { nowMs } from './loadgenProtocol.js';
import { serveCommands } from './workerProcess.js';

export interface SubmitSpec {
  mode: 'http' | 'kafka';
  collectorUrl: string;
  apiKey: string;
  app: string;
  brokers: string[];
  topicPrefix: string;
  /** Recipients: `${userPrefix}<i>` for i in [0, users), or an explicit list. */
  userPrefix: string;
  users: number;
  userList?: string[];
  persistent: boolean;
  /** Recipient messages per second. */
  rate: number;
  durationMs: number;
  /** Recipients per HTTP request (`to.users` list) or records per Kafka send. */
  batch: number;
  /** Requests (HTTP) or sends (Kafka) in flight at most. */
  concurrency: number;
  /** Total recipient messages to send, then stop (overrides the duration when smaller). */
  maxMessages?: number;
  /** `to: { all: true }` once, instead of users (broadcast). */
  broadcast?: boolean;
}

export interface SubmitResult {
  offered: number;
  /** Recipient messages the collector (HTTP 202) or Kafka (acks=all) accepted. */
  accepted: number;
  /** Recipient messages not sent because the in-flight bound was reached (the source fell behind). */
  behind: number;
  errors: Record<string, number>;
  acceptedPerSecond: number[];
  ms: number;
}

let seq = 0;
let producer: Producer | undefined;

function recipientsFor(spec: SubmitSpec, first: number, n: number): string[] {
  const out: string[] = [];
  const total = spec.userList ? spec.userList.length : spec.users;
  for (let i = 0; i < n; i++) {
    const j = (first + i) % total;
    out.push(spec.userList ? spec.userList[j]! : `${spec.userPrefix}${j}`);
  }
  return out;
}

async function run(spec: SubmitSpec): Promise<SubmitResult> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: spec.concurrency });
  const url = new URL('/v1/messages', spec.collectorUrl);
  if (spec.mode === 'kafka' && !producer) {
    producer = createProducer(createKafka({ clientId: 'bench-submit', brokers: spec.brokers, logger: pino({ level: 'silent' }) }));
    await producer.connect();
  }
  const topic = topicNames(spec.topicPrefix).events;
  const res: SubmitResult = { offered: 0, accepted: 0, behind: 0, errors: {}, acceptedPerSecond: [], ms: 0 };
  const started = performance.now();
  const maxMessages = spec.maxMessages ?? Infinity;
  let inFlight = 0;
  let nextRecipient = 0;
  const addError = (code: string) => (res.errors[code] = (res.errors[code] ?? 0) + 1);
  const accept = (n: number) => {
    res.accepted += n;
    const sec = Math.floor((performance.now() - started) / 1000);
    res.acceptedPerSecond[sec] = (res.acceptedPerSecond[sec] ?? 0) + n;
  };

  const postOne = (users: string[]) =>
    new Promise<void>((resolve) => {
      const body = JSON.stringify({
        to: spec.broadcast ? { all: true } : { users },
        payload: { t: nowMs(), k: seq++ },
        persistent: spec.persistent,
      });
      const req = http.request(
        url,
        {
          method: 'POST',
          agent,
          headers: { authorization: `Bearer ${spec.apiKey}`, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (r) => {
          r.resume();
          r.on('end', () => {
            if (r.statusCode === 202) accept(spec.broadcast ? 1 : users.length);
            else addError(`http-${r.statusCode}`);
            resolve();
          });
        },
      );
      req.on('error', (err: NodeJS.ErrnoException) => {
        addError(err.code ?? 'error');
        resolve();
      });
      req.end(body);
    });

  const produce = async (groups: string[][]) => {
    const messages = groups.map((users) => {
      const ev = toBusinessEvent({ app: spec.app, to: { users }, payload: { t: nowMs(), k: seq++ }, persistent: spec.persistent }, `b-${process.pid}-${seq}`);
      const rec = encodeRecord('BusinessEvent', ev);
      return { key: eventKey(ev), value: rec.value, headers: rec.headers };
    });
    try {
      await producer!.send({ topic, acks: -1, messages });
      accept(groups.reduce((a, g) => a + g.length, 0));
    } catch (err) {
      addError((err as Error).name || 'kafka');
    }
  };

  // Open loop: every few ms, send what is due by now; what cannot go out because
  // the in-flight bound is reached is counted as `behind`, never queued without bound.
  const TICK_MS = 5;
  const perRequest = spec.broadcast ? 1 : spec.mode === 'http' ? spec.batch : 1;
  await new Promise<void>((done) => {
    const timer = setInterval(() => {
      const elapsed = performance.now() - started;
      const stop = elapsed >= spec.durationMs || res.offered >= maxMessages;
      if (stop) {
        clearInterval(timer);
        const wait = setInterval(() => {
          if (inFlight === 0 || performance.now() - started > spec.durationMs + 30_000) {
            clearInterval(wait);
            done();
          }
        }, 5);
        return;
      }
      let due = Math.min(maxMessages, Math.floor((spec.rate * elapsed) / 1000)) - res.offered;
      if (spec.mode === 'kafka') {
        if (due <= 0) return;
        if (inFlight >= spec.concurrency) {
          // Kafka sends are batched: what is due waits for the next tick (bounded by time, not memory).
          return;
        }
        const groups: string[][] = [];
        const n = Math.min(due, spec.batch);
        for (let i = 0; i < n; i++) groups.push(recipientsFor(spec, nextRecipient++, 1));
        res.offered += n;
        inFlight++;
        void produce(groups).finally(() => inFlight--);
        return;
      }
      const left = maxMessages - res.offered;
      while (due >= perRequest || (due > 0 && left < perRequest)) {
        const n = spec.broadcast ? 1 : Math.min(perRequest, maxMessages - res.offered);
        if (n <= 0) break;
        // A fixed set of messages (maxMessages) waits for a free slot; an open-loop rate counts what it could not send.
        if (inFlight >= spec.concurrency && spec.maxMessages !== undefined) break;
        res.offered += n;
        due -= n;
        if (inFlight >= spec.concurrency) {
          res.behind += n;
          continue;
        }
        const users = spec.broadcast ? [] : recipientsFor(spec, nextRecipient, n);
        nextRecipient += n;
        inFlight++;
        void postOne(users).finally(() => inFlight--);
      }
    }, TICK_MS);
  });
  agent.destroy();
  res.ms = performance.now() - started;
  res.acceptedPerSecond = Array.from(res.acceptedPerSecond, (v) => v ?? 0);
  return res;
}

serveCommands({
  run: (m) => run(m.spec as SubmitSpec),
  async close() {
    await producer?.disconnect().catch(() => undefined);
    setTimeout(() => process.exit(0), 20);
    return {};
  },
});
