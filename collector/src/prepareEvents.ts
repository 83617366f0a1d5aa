import { setTimeout as sleep } from 'node:timers/promises';
import type { KafkaMessage } from 'kafkajs';
import type { App, AppStore } from '../../store/apps.js';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { PushError } from '../../platform/errors.js';
import { decodeRecord, schemaIdOf } from '../../schemas/registry.js';
import type { BusinessEvent } from '../../schemas/types.js';
import type { SubmitDeps } from './submitMessage.js';
import { validateSubmission, type Submission } from './validateMessage.js';
import { eventIdempotencyKey } from '../../protocol/eventOrigin.js';
import { checkEventSignature, SIGNATURE_HEADER } from '../../protocol/eventSignature.js';
import type { RateLimiter } from './rateLimiter.js';
import { isInfrastructureFailure, poisonOf } from './eventFailures.js';

export interface EventsOptions {
  /** Dead-letter unsigned records of every app (an app with signing secrets always requires them). */
  requireSignature: boolean;
  /** Attempts at a part after an infrastructure failure before its partition is paused. */
  retries: number;
  /** First backoff between attempts; doubles, up to MAX_BACKOFF_MS. */
  retryBackoffMs: number;
  /** How long a partition stays paused once its attempts are used up. */
  pauseMs: number;
}

export type EventsDeps = SubmitDeps & { apps: AppStore; dlq: BatchPublisher; limiter: RateLimiter; options: EventsOptions };

export type Submittable = { message: KafkaMessage; app: App; sub: Submission; lane: string };
export type Prepared = Submittable | { message: KafkaMessage; reject: { code: string; reason: string } };

const headerText = (headers: KafkaMessage['headers'], name: string): string | undefined => {
  const h = headers?.[name];
  return (Array.isArray(h) ? h[0] : h)?.toString();
};

/** Maps an Avro BusinessEvent to the same shape HTTP submissions are validated in. */
function toBody(ev: BusinessEvent): Record<string, unknown> {
  let payload: unknown;
  try {
    payload = JSON.parse(ev.payload);
  } catch {
    throw new PushError('INVALID_REQUEST', 'payload: is not valid JSON text', { status: 400 });
  }
  const to = ev.to.all ? { all: true } : ev.to.group !== null ? { group: ev.to.group } : { users: ev.to.users };
  const body: Record<string, unknown> = { to, payload, persistent: ev.persistent };
  if (ev.ttlSeconds !== null) body.ttlSeconds = ev.ttlSeconds;
  if (ev.idempotencyKey !== null) body.idempotencyKey = ev.idempotencyKey;
  if (ev.collapseKey !== null) body.collapseKey = ev.collapseKey;
  if (ev.traceId !== null) body.traceId = ev.traceId;
  return body;
}

/** Turns push.events records into submissions (or reasons to dead-letter them), and waits for rate limits. */
export function createEventPreparer(deps: EventsDeps) {
  const { options } = deps;
  /** Whether the record's app identity holds: signed by one of the app's secrets, or unsigned where that is allowed. */
  const signatureProblem = (app: App, message: KafkaMessage): { code: string; reason: string } | undefined => {
    const header = headerText(message.headers, SIGNATURE_HEADER);
    const secrets = app.eventSigningSecrets ?? [];
    if (header === undefined && secrets.length === 0 && !options.requireSignature) return undefined;
    const check = checkEventSignature(header, secrets, { schemaId: schemaIdOf(message.headers) ?? '', key: message.key, value: message.value! });
    return check.ok ? undefined : { code: check.code, reason: check.reason };
  };

  /**
   * Decodes, authenticates and validates a record: a submission, or the reason
   * it goes to dead letters. Throws only for an infrastructure failure.
   */
  const prepare = async (partition: number, message: KafkaMessage): Promise<Prepared> => {
    let ev: BusinessEvent;
    try {
      ev = decodeRecord('BusinessEvent', message.value, message.headers);
    } catch (err) {
      return { message, reject: poisonOf(err) };
    }
    let app: App | undefined;
    try {
      app = await deps.apps.get(ev.app);
    } catch (err) {
      throw new PushError('STORE_UNAVAILABLE', 'cannot look up the app now', { status: 503, retriable: true, cause: err });
    }
    if (!app) return { message, reject: { code: 'UNKNOWN_APP', reason: `unknown app "${ev.app.slice(0, 200)}"` } };
    const bad = signatureProblem(app, message);
    if (bad) return { message, reject: bad };
    try {
      const sub = validateSubmission(toBody(ev), app.limits);
      sub.idempotencyKey ??= eventIdempotencyKey(partition, message);
      return { message, app, sub, lane: message.key?.toString() ?? `#offset:${message.offset}` };
    } catch (err) {
      if (isInfrastructureFailure(err)) throw err;
      return { message, reject: poisonOf(err) };
    }
  };

  /**
   * Waits, record by record, until each app's rate limit (shared with HTTP
   * through Redis) lets its records through. Resolves with how many of the
   * records from the start may go on: fewer than all when the consumer is
   * asked to stop while waiting (the rest are fetched again).
   */
  const throttle = async (prepared: Prepared[], keepGoing: () => boolean, heartbeat: () => Promise<void>): Promise<number> => {
    for (let i = 0; i < prepared.length; i++) {
      const p = prepared[i]!;
      if ('reject' in p) continue;
      const cost = p.sub.to.kind === 'users' ? p.sub.to.users.length : 1;
      for (let waitMs = await deps.limiter.take(p.app, cost); waitMs > 0; waitMs = await deps.limiter.take(p.app, cost)) {
        deps.metrics.eventsThrottled.inc();
        if (!keepGoing()) return i;
        await sleep(waitMs);
        try {
          await heartbeat();
        } catch {
          return i; // a rebalance: let the batch end, the partition's next owner reads on from here
        }
        if (!keepGoing()) return i;
      }
    }
    return prepared.length;
  };

  return { prepare, throttle };
}
