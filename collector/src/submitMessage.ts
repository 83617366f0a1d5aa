import type { App } from '../../common/src/apps.js';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
import type { MessagesStore, StoredMessage } from '../../store/messages.js';
import type { WriteBatcher } from '../../store/writeBatcher.js';
import type { Logger } from '../../common/src/logger.js';
import type { IdempotencyKeys } from '../../store/idempotency.js';
import type { TaskStore } from '../../common/src/tasks.js';
import { newId } from '../../protocol/ids.js';
import { recordKey, userRecordKey } from '../../protocol/recordKeys.js';
import { PushError } from '../../common/src/errors.js';
import { encodeRecord, encodeRecordsVarying, latestSchemaId, SCHEMA_HEADER } from '../../schemas/registry.js';
import type { IngestRecord } from '../../schemas/types.js';
import type { Submission } from './validateMessage.js';
import type { CollectorMetrics } from './collectorMetrics.js';
import { checkFanout, type FanoutLimits } from './checkFanout.js';

export interface SubmitResult {
  id: string;
  /** `accepted`: on its way; `stored`: kept, Kafka was unavailable, the outbox will publish it. */
  status: 'accepted' | 'stored';
  duplicate?: boolean;
  /** Group and all messages: the broadcast task. */
  taskId?: string;
}

export interface SubmitDeps {
  /** Takes back messages, and tells whether one is durable (its outbox entry is written first). */
  store: Pick<MessagesStore, 'unstore' | 'isStored'>;
  /** Stores the messages of concurrent submissions in one batch. */
  messages: WriteBatcher<StoredMessage>;
  idempotency: IdempotencyKeys;
  tasks: TaskStore;
  publisher: BatchPublisher;
  logger: Logger;
  metrics: CollectorMetrics;
  /** Marks published messages in batches, off the request path. */
  markPublished: (id: string) => void;
  ingestTopic: string;
  /** Bounds on what one message may fan out to (defaults: DEFAULT_FANOUT_LIMITS). */
  fanout?: FanoutLimits;
}

/** 16 MiB of ingest records per message; one record at most the default produce request (512 KiB). */
export const DEFAULT_FANOUT_LIMITS: FanoutLimits = { maxFanoutBytes: 16 * 1024 * 1024, maxRecordBytes: 512 * 1024 };

/**
 * Ingest records for a message: one per recipient for a user list (keyed
 * app|user so each user's messages keep their order on one partition), one
 * for a group or all message (keyed app|#g:<group> or app|#all).
 */
export function ingestMessages(msg: StoredMessage) {
  const base: Omit<IngestRecord, 'user'> = {
    id: msg._id,
    app: msg.app,
    target: msg.target,
    group: msg.group ?? null,
    payload: msg.payload,
    persistent: msg.persistent,
    createdAt: msg.createdAt.getTime(),
    expiresAt: msg.expiresAt.getTime(),
    collapseKey: msg.collapseKey ?? null,
    traceId: msg.traceId,
    taskId: msg.taskId ?? null,
  };
  // One header object for all of a message's records (the producer only reads it).
  const headers = { [SCHEMA_HEADER]: latestSchemaId('IngestRecord'), 'push-trace': msg.traceId };
  if (msg.target !== 'USER') return [{ key: recordKey(msg.app, msg), value: encodeRecord('IngestRecord', { ...base, user: null }).value, headers }];
  const users = msg.users ?? [];
  const values = encodeRecordsVarying('IngestRecord', base, 'user', users);
  return users.map((user, i) => ({ key: userRecordKey(msg.app, user), value: values[i]!, headers }));
}

/**
 * The one path every message takes, from HTTP or push.events: idempotency,
 * store first (persistent), then publish. A persistent message that is stored
 * is never lost: if Kafka fails it stays unpublished for the outbox sweeper.
 */
export async function submitMessage(deps: SubmitDeps, app: App, sub: Submission): Promise<SubmitResult> {
  // Before anything is claimed, stored or built: a message whose records could never be
  // published is refused here (413), not answered "stored" and left to fail in the outbox.
  checkFanout({ app: app._id, users: sub.to.kind === 'users' ? sub.to.users : undefined, group: sub.to.kind === 'group' ? sub.to.group : undefined, payload: sub.payload, traceId: sub.traceId, collapseKey: sub.collapseKey }, deps.fanout ?? DEFAULT_FANOUT_LIMITS);
  const id = newId();
  if (sub.idempotencyKey) {
    let claim;
    try {
      claim = await deps.idempotency.claim(app._id, sub.idempotencyKey, id);
    } catch (err) {
      throw new PushError('STORE_UNAVAILABLE', 'cannot check the idempotency key now; nothing was accepted', { status: 503, retriable: true, cause: err });
    }
    if (claim.state === 'duplicate') {
      deps.metrics.duplicates.inc();
      return { id: claim.id, status: 'accepted', duplicate: true };
    }
    if (claim.state === 'in-progress') {
      throw new PushError('IDEMPOTENCY_IN_PROGRESS', 'a submission with this idempotency key is still being handled; retry shortly', {
        status: 409,
        retriable: true,
      });
    }
  }
  return submitClaimed(deps, app, sub, id);
}

/**
 * A submission whose idempotency key (if any) is claimed for `id`: stores and
 * publishes it, then marks the key done, only for this claim and only once the
 * message is durable (a key marked done for a message that is not would answer
 * every retry with a message nobody will deliver).
 */
export async function submitClaimed(deps: SubmitDeps, app: App, sub: Submission, id: string, keepUntil?: Date): Promise<SubmitResult> {
  const result = await storeAndPublish(deps, app, sub, id);
  if (sub.idempotencyKey) {
    await deps.idempotency.complete(app._id, sub.idempotencyKey, id, keepUntil ? { keepUntil } : {}).catch((err: Error) =>
      // Left in progress: a retry resolves it by looking the message up (idempotency.ts).
      deps.logger.warn({ err: err.message, id }, 'could not mark the idempotency key complete'),
    );
  }
  return result;
}

async function storeAndPublish(deps: SubmitDeps, app: App, sub: Submission, id: string): Promise<SubmitResult> {
  const now = Date.now();
  const to = sub.to;
  const taskId = to.kind === 'users' ? undefined : newId(now);
  const msg: StoredMessage = {
    _id: id,
    app: app._id,
    target: to.kind === 'users' ? 'USER' : to.kind === 'group' ? 'GROUP' : 'ALL',
    ...(to.kind === 'users' ? { users: to.users } : {}),
    ...(to.kind === 'group' ? { group: to.group } : {}),
    ...(taskId ? { taskId } : {}),
    payload: sub.payload,
    persistent: sub.persistent,
    createdAt: new Date(now),
    expiresAt: new Date(now + sub.ttlSeconds * 1000),
    traceId: sub.traceId ?? id,
    ...(sub.collapseKey ? { collapseKey: sub.collapseKey } : {}),
  };
  const release = async () => {
    if (sub.idempotencyKey) await deps.idempotency.release(app._id, sub.idempotencyKey, id).catch(() => undefined);
  };
  if (msg.persistent) {
    try {
      await deps.messages.add(msg);
    } catch (err) {
      // A write that failed on the wire may still have been applied: only a message known
      // not to be stored gives its key back (else the key stays claimed, and a retry finds
      // the message once the store answers again instead of storing it a second time).
      const stored = await deps.store.isStored(id).catch(() => undefined);
      if (stored === false) await release();
      else if (stored === undefined) deps.idempotency.gaveUp(id);
      if (stored !== true) throw new PushError('STORE_UNAVAILABLE', 'cannot store the message now; nothing was accepted', { status: 503, retriable: true, cause: err });
    }
    deps.metrics.stored.inc();
  }
  if (taskId) {
    try {
      await deps.tasks.create({
        _id: taskId,
        app: app._id,
        messageId: id,
        target: to.kind === 'group' ? { group: to.group } : { all: true },
        persistent: sub.persistent,
        ratePerSecond: sub.ratePerSecond ?? null,
        // A stop must outlive the message (common/src/tasks.ts).
        expiresAt: msg.expiresAt,
      });
    } catch (err) {
      // A stored persistent broadcast without its task could not be tracked or stopped.
      if (msg.persistent) await deps.store.unstore([id]).catch(() => undefined);
      await release();
      throw new PushError('STORE_UNAVAILABLE', 'cannot create the broadcast task now; nothing was accepted', { status: 503, retriable: true, cause: err });
    }
  }

  try {
    // Owned by the app: one app's fan-outs may hold only its share of the publish queue.
    await deps.publisher.publish(deps.ingestTopic, ingestMessages(msg), app._id);
  } catch (err) {
    // Refused before anything was queued (it can never fit): nothing was published, so
    // nothing is kept either. checkFanout catches these first; this is the backstop.
    const neverFits = err instanceof PushError && (err.code === 'RECORD_TOO_LARGE' || err.code === 'PUBLISH_TOO_LARGE');
    if (msg.persistent && !neverFits) {
      deps.logger.warn({ id, traceId: msg.traceId, err: (err as Error).message }, 'stored; publish deferred to the outbox');
      deps.metrics.deferred.inc();
      return { id, status: 'stored', ...(taskId ? { taskId } : {}) };
    }
    if (msg.persistent) await deps.store.unstore([id]).catch(() => undefined);
    await release();
    throw err;
  }
  deps.metrics.published.inc(to.kind === 'users' ? to.users.length : 1);
  if (msg.persistent) deps.markPublished(id);
  deps.logger.debug({ id, traceId: msg.traceId, target: msg.target, taskId }, 'message accepted');
  return { id, status: 'accepted', ...(taskId ? { taskId } : {}) };
}
