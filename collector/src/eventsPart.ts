import type { KafkaMessage } from 'kafkajs';
import { deadLetter as sendToDlq, decodeOrDeadLetter, type DeadLetterSink } from '../../platform/kafka/decodeOrDeadLetter.js';
import { submitBatch } from './submitBatch.js';
import { isInfrastructureFailure, poisonOf } from './eventFailures.js';
import { createEventPreparer, type EventsDeps, type Prepared, type Submittable } from './prepareEvents.js';

/**
 * One part of a fetched batch at once: decode every record (the undecodable
 * ones to push.dlq: platform/kafka/decodeOrDeadLetter.ts), validate the others, wait
 * for rate limits, then submit the records as one batch (submitBatch.ts: one
 * claim of their idempotency keys, one store write, a few publisher calls,
 * records with the same Kafka key kept in order). A key seen twice in the part
 * goes in a later batch (where it finds the first done: a duplicate).
 * Resolves with the offsets handled; rejects with the first infrastructure
 * failure (carrying the offsets handled).
 */
export function createPartHandler(deps: EventsDeps, sink: DeadLetterSink) {
  const { prepare, throttle } = createEventPreparer(deps);
  /** Adds the offsets it handles to `done`; throws the first infrastructure failure. */
  const handle = async (
    done: Set<string>,
    topic: string,
    partition: number,
    messages: KafkaMessage[],
    keepGoing: () => boolean,
    heartbeat: () => Promise<void>,
  ): Promise<void> => {
    // Undecodable records first (a dead letter that cannot be written is an infrastructure failure).
    const events = await decodeOrDeadLetter(sink, 'BusinessEvent', topic, partition, messages);
    for (const m of events.deadLettered) done.add(m.offset);
    const all: Prepared[] = [];
    for (const { message, record } of events.decoded) all.push(await prepare(partition, message, record));
    const prepared = all.slice(0, await throttle(all, keepGoing, heartbeat));
    let failure: unknown;
    /** Dead-letters a record; a dead-letter write that fails is an infrastructure failure. */
    const deadLetter = async (message: KafkaMessage, why: { code: string; reason: string }) => {
      try {
        await sendToDlq(sink, { topic, partition, message }, why.code, why.reason);
        done.add(message.offset);
      } catch (err) {
        failure ??= err;
      }
    };
    const rounds: Submittable[][] = [];
    const seen = new Map<string, number>();
    for (const p of prepared) {
      if ('reject' in p) continue;
      const k = `${p.app._id}|${p.sub.idempotencyKey}`;
      const n = seen.get(k) ?? 0;
      seen.set(k, n + 1);
      (rounds[n] ??= []).push(p);
    }
    await Promise.all(prepared.map((p) => ('reject' in p ? deadLetter(p.message, p.reject) : undefined)));
    for (const round of rounds) {
      if (failure !== undefined || !keepGoing()) break;
      // A record's key is kept while its message lives, so a replay of the record finds the message.
      const outcomes = await submitBatch(
        deps,
        round.map((p) => ({ app: p.app, sub: p.sub, lane: p.lane, keepUntil: new Date(Date.now() + p.sub.ttlSeconds * 1000) })),
      );
      await Promise.all(
        round.map(async (p, i) => {
          const outcome = outcomes[i]!;
          if ('skipped' in outcome) return;
          if ('result' in outcome) {
            deps.metrics.received.inc({ source: 'kafka', outcome: outcome.result.duplicate ? 'duplicate' : outcome.result.status });
            done.add(p.message.offset);
          } else if (isInfrastructureFailure(outcome.error)) failure ??= outcome.error;
          else await deadLetter(p.message, poisonOf(outcome.error));
        }),
      );
    }
    if (failure !== undefined) throw failure;
  };
  return async (topic: string, partition: number, messages: KafkaMessage[], keepGoing: () => boolean, heartbeat: () => Promise<void>): Promise<Set<string>> => {
    const done = new Set<string>();
    try {
      await handle(done, topic, partition, messages, keepGoing, heartbeat);
    } catch (err) {
      // The records handled before the failure (dead letters included) are not handled again by the retry.
      throw Object.assign(err as object, { handled: done });
    }
    return done;
  };
}
