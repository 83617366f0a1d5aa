import { randomUUID } from 'node:crypto';
import { pino, type Logger } from 'pino';
import type { RecordMetadata } from 'kafkajs';
import { createKafka, createProducer } from '../../platform/kafka/kafka.js';
import { topicNames } from '../../protocol/topics.js';
import { encodeRecord, SCHEMA_HEADER } from '../../schemas/registry.js';
import { signEvent, SIGNATURE_HEADER } from '../../protocol/eventSignature.js';
import type { BusinessEvent } from '../../schemas/types.js';
import { PublishError } from './publishError.js';
import type { PushMessage } from './pushMessage.js';

export interface KafkaPublisherOptions {
  /** Kafka bootstrap brokers, e.g. `['127.0.0.1:9092']`. Required. */
  brokers: string[];
  /** Prefix of the platform's topic names (its `KAFKA_TOPIC_PREFIX`). Default ''. */
  topicPrefix?: string;
  /** Kafka client id. Default `push-publisher`. */
  clientId?: string;
  /** kafkajs logs go here. Default: a silent pino logger. */
  logger?: Logger;
  /**
   * The app's push.events signing secret. When given, every record carries a
   * `push-signature` header, which proves to the collector that the record
   * comes from the app it names. Required when the collector runs with
   * `EVENTS_REQUIRE_SIGNATURE=true` or the app has a signing secret.
   */
  signingSecret?: string;
}

export interface PushEvent extends PushMessage {
  /** App (tenant) id; Kafka carries no API key, so the record names its app. */
  app: string;
}

export interface KafkaPublisher {
  /**
   * Produces a BusinessEvent to `push.events` (acks from all replicas).
   * Resolves once Kafka has it; the collector validates and stores it later,
   * and sends it to `push.dlq` if it is invalid.
   */
  send(event: PushEvent): Promise<{ idempotencyKey: string; partition: number; offset: string }>;
  close(): Promise<void>;
}

/** The Avro shape of a message; throws `INVALID_MESSAGE` for what could never be valid. */
export function toBusinessEvent(event: PushEvent, idempotencyKey: string): BusinessEvent {
  const { app, to, payload } = event;
  if (typeof app !== 'string' || app === '') throw new PublishError('INVALID_MESSAGE', 'app is required');
  if (payload === undefined) throw new PublishError('INVALID_MESSAGE', 'payload is required');
  const users = 'users' in to && Array.isArray(to.users) ? to.users : [];
  const group = 'group' in to && typeof to.group === 'string' ? to.group : null;
  const all = 'all' in to && to.all === true;
  if ((users.length > 0 ? 1 : 0) + (group !== null ? 1 : 0) + (all ? 1 : 0) !== 1) {
    throw new PublishError('INVALID_MESSAGE', 'to must be exactly one of { users: [...] } (non-empty), { group } or { all: true }');
  }
  return {
    app,
    to: { users, group, all },
    payload: JSON.stringify(payload),
    persistent: event.persistent ?? true,
    ttlSeconds: event.ttlSeconds ?? null,
    idempotencyKey,
    collapseKey: event.collapseKey ?? null,
    traceId: event.traceId ?? null,
  };
}

/** The record key: `<app>|<first user>` or `<app>|<group>`, so one recipient's events stay in order. */
export function eventKey(ev: BusinessEvent): string {
  return ev.to.all ? ev.app : `${ev.app}|${ev.to.group ?? ev.to.users[0]}`;
}

/** Publishes messages as Avro records on `push.events` instead of over HTTP. Connects on first use. */
export function createKafkaPublisher(options: KafkaPublisherOptions): KafkaPublisher {
  if (!Array.isArray(options.brokers) || options.brokers.length === 0) throw new TypeError('createKafkaPublisher: brokers must be a non-empty array');
  if (options.signingSecret !== undefined && (typeof options.signingSecret !== 'string' || options.signingSecret === '')) {
    throw new TypeError('createKafkaPublisher: signingSecret must be a non-empty string');
  }
  const topic = topicNames(options.topicPrefix ?? '').events;
  const kafka = createKafka({ clientId: options.clientId ?? 'push-publisher', brokers: options.brokers, logger: options.logger ?? pino({ level: 'silent' }) });
  const producer = createProducer(kafka);
  let connected: Promise<void> | undefined;

  return {
    async send(event) {
      const idempotencyKey = event.idempotencyKey ?? randomUUID();
      const ev = toBusinessEvent(event, idempotencyKey);
      let record;
      try {
        record = encodeRecord('BusinessEvent', ev);
      } catch (err) {
        throw new PublishError('INVALID_MESSAGE', `does not fit the BusinessEvent schema: ${(err as Error).message}`, { cause: err });
      }
      const key = eventKey(ev);
      const headers: Record<string, string> = { ...record.headers };
      if (options.signingSecret)
        headers[SIGNATURE_HEADER] = signEvent(options.signingSecret, { schemaId: record.headers[SCHEMA_HEADER]!, key, value: record.value });
      let meta: RecordMetadata[];
      try {
        await (connected ??= producer.connect());
        meta = await producer.send({ topic, acks: -1, messages: [{ key, value: record.value, headers }] });
      } catch (err) {
        connected = undefined;
        throw new PublishError('KAFKA_UNAVAILABLE', `could not produce to ${topic}: ${(err as Error).message}`, { retriable: true, cause: err });
      }
      return { idempotencyKey, partition: meta[0]!.partition, offset: meta[0]!.baseOffset ?? meta[0]!.offset ?? '' };
    },
    async close() {
      if (connected) await producer.disconnect();
      connected = undefined;
    },
  };
}
