import { pino } from 'pino';
import type { Admin, Producer } from 'kafkajs';
import { createKafka, createProducer } from '../../platform/kafka/kafka.js';
import { consumerLag } from '../../platform/kafka/consumerLag.js';
import { signEvent, SIGNATURE_HEADER } from '../../protocol/eventSignature.js';
import type { Topics } from '../../protocol/topics.js';
import { encodeRecord, SCHEMA_HEADER } from '../../schemas/registry.js';
import type { BusinessEvent } from '../../schemas/types.js';
import { stack as infra } from './env.js';

/** A BusinessEvent to users of `app`, with every optional field null; `over` replaces fields. */
export function businessEvent(app: string, users: string[], payload: unknown, over: Partial<BusinessEvent> = {}): BusinessEvent {
  return {
    app,
    to: { users, group: null, all: false },
    payload: JSON.stringify(payload),
    persistent: true,
    ttlSeconds: 600,
    idempotencyKey: null,
    collapseKey: null,
    traceId: null,
    ...over,
  };
}

export type RawRecord = { key: string | null; value: Buffer | null; headers: Record<string, string> };

/** The record a business system would produce, signed with `secret` when given. */
export function eventRecord(ev: BusinessEvent, key: string | null, secret?: string): RawRecord {
  const rec = encodeRecord('BusinessEvent', ev);
  const headers = { ...rec.headers };
  if (secret) headers[SIGNATURE_HEADER] = signEvent(secret, { schemaId: rec.headers[SCHEMA_HEADER]!, key, value: rec.value });
  return { key, value: rec.value, headers };
}

/** A connected producer and admin on the shared broker (disconnect both with `close`). */
export async function kafkaTools(clientId: string): Promise<{ producer: Producer; admin: Admin; close(): Promise<void> }> {
  const kafka = createKafka({ clientId, brokers: infra.kafkaBrokers, logger: pino({ level: 'silent' }) });
  const producer = createProducer(kafka);
  const admin = kafka.admin();
  await Promise.all([producer.connect(), admin.connect()]);
  return { producer, admin, close: async () => void (await Promise.all([producer.disconnect(), admin.disconnect()])) };
}

/** Records of push.events the collector's group has not committed yet. */
export async function eventsLag(admin: Admin, topics: Topics): Promise<number> {
  const [g] = await consumerLag(admin, [{ group: topics.groups.collectorEvents, topics: [topics.events] }]);
  return g?.lag ?? Number.NaN;
}
