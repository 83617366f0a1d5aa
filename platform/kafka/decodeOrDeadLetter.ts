import type { KafkaMessage } from 'kafkajs';
import type { BatchPublisher } from './batchPublisher.js';
import type { Logger } from '../logger.js';
import { sendToDeadLetters } from './deadLetter.js';
import { decodeRecord, RecordDecodeError, type RecordKind } from '../../schemas/registry.js';
import type { RecordTypes } from '../../schemas/types.js';

/** A field the dead-letter warning may carry (`reason` is cut to 300 characters). */
export type DeadLetterLogField = 'topic' | 'partition' | 'offset' | 'code' | 'reason';

/** Where one consumer's dead letters go, and how each is counted and logged. */
export interface DeadLetterSink {
  publisher: BatchPublisher;
  dlqTopic: string;
  /** The consumer group, written into each dead letter as the consumer that gave the record up. */
  consumer: string;
  /** Counts one dead letter: the service's `push_dead_letters_total{code}` (and whatever else it counts). */
  count: (code: string) => void;
  logger: Pick<Logger, 'warn'>;
  /** The warning logged for each dead letter, with the fields it carries, in this order. */
  log: { message: string; fields: readonly DeadLetterLogField[] };
}

/** Where a record was read. */
export interface RecordSource {
  topic: string;
  partition: number;
  message: KafkaMessage;
}

/**
 * Sends one record to push.dlq with its reason (deadLetter.ts), then
 * counts and logs it. Rejects when the dead letter cannot be written: nothing is
 * counted then, and the caller must not move past the record.
 */
export async function deadLetter(sink: DeadLetterSink, source: RecordSource, code: string, reason: string): Promise<void> {
  await sendToDeadLetters(sink.publisher, source, code, reason, sink.consumer, sink.dlqTopic);
  sink.count(code);
  const all = { topic: source.topic, partition: source.partition, offset: source.message.offset, code, reason: reason.slice(0, 300) };
  sink.logger.warn(Object.fromEntries(sink.log.fields.map((f) => [f, all[f]])), sink.log.message);
}

export interface Decoded<K extends RecordKind> {
  message: KafkaMessage;
  record: RecordTypes[K];
}

export interface DecodedBatch<K extends RecordKind> {
  /** The records that decoded, in the order of their messages. */
  decoded: Decoded<K>[];
  /** The messages that did not: each is in push.dlq, counted and logged. */
  deadLettered: KafkaMessage[];
}

/**
 * Decodes a batch of one partition's messages as `kind` records. A message that
 * does not decode (RecordDecodeError) goes to push.dlq with the error's code and
 * message, counted and logged once. Resolves once every dead letter is written,
 * so a caller that moves offsets only afterwards never skips a record that is
 * neither handled nor dead-lettered; rejects with the first dead letter that could
 * not be written (after the others settled).
 */
export async function decodeOrDeadLetter<K extends RecordKind>(
  sink: DeadLetterSink,
  kind: K,
  topic: string,
  partition: number,
  messages: readonly KafkaMessage[],
): Promise<DecodedBatch<K>> {
  const out: DecodedBatch<K> = { decoded: [], deadLettered: [] };
  const failed: { message: KafkaMessage; err: RecordDecodeError }[] = [];
  for (const message of messages) {
    try {
      out.decoded.push({ message, record: decodeRecord(kind, message.value, message.headers) });
    } catch (err) {
      if (!(err instanceof RecordDecodeError)) throw err;
      failed.push({ message, err });
    }
  }
  if (failed.length === 0) return out;
  const written = await Promise.allSettled(failed.map(({ message, err }) => deadLetter(sink, { topic, partition, message }, err.code, err.message)));
  const refused = written.find((w) => w.status === 'rejected');
  if (refused) throw refused.reason;
  out.deadLettered = failed.map((f) => f.message);
  return out;
}
