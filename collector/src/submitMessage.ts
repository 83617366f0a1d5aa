import type { App } from '../../common/src/apps.js';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
import type { MessageStore, StoredMessage } from '../../common/src/messageStore.js';
import type { Logger } from '../../common/src/logger.js';
import type { IdempotencyKeys } from '../../common/src/idempotencyKeys.js';
import { newId } from '../../common/src/ids.js';
import { PushError } from '../../common/src/errors.js';
import { encodeRecord } from '../../schemas/registry.js';
import type { IngestRecord } from '../../schemas/types.js';
import type { Submission } from './validateMessage.js';
import type { CollectorMetrics } from './collectorMetrics.js';

export interface SubmitResult {
  id: string;
  /** `accepted`: on its way; `stored`: kept, Kafka was unavailable, the outbox will publish it. */
  status: 'accepted' | 'stored';
  duplicate?: boolean;
}

export interface SubmitDeps {
  store: MessageStore;
  idempotency: IdempotencyKeys;
  publisher: BatchPublisher;
  logger: Logger;
  metrics: CollectorMetrics;
  /** Marks published messages in batches, off the request path. */
  markPublished: (id: string) => void;
  ingestTopic: string;
}

/** One ingest record per recipient, keyed app|user so each user's messages stay in order on one partition. */
export function ingestMessages(msg: StoredMessage, users: string[]) {
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
    taskId: null,
  };
  return users.map((user) => {
    const rec = encodeRecord('IngestRecord', { ...base, user });
    return { key: `${msg.app}|${user}`, value: rec.value, headers: { ...rec.headers, 'push-trace': msg.traceId } };
  });
}

/**
 * The one path every message takes, from HTTP or push.events: idempotency,
 * store first (persistent), then publish. A persistent message that is stored
 * is never lost: if Kafka fails it stays unpublished for the outbox sweeper.
 */
export async function submitMessage(deps: SubmitDeps, app: App, sub: Submission): Promise<SubmitResult> {
  if (sub.to.kind !== 'users') {
    throw new PushError('NOT_IMPLEMENTED', `"to.${sub.to.kind}" delivery is not available yet; use "to.users"`, { status: 501 });
  }
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
  const result = await storeAndPublish(deps, app, sub, sub.to.users, id);
  if (sub.idempotencyKey) {
    await deps.idempotency.complete(app._id, sub.idempotencyKey).catch((err: Error) =>
      deps.logger.warn({ err: err.message, id }, 'could not mark the idempotency key complete'),
    );
  }
  return result;
}

async function storeAndPublish(deps: SubmitDeps, app: App, sub: Submission, users: string[], id: string): Promise<SubmitResult> {
  const now = Date.now();
  const msg: StoredMessage = {
    _id: id,
    app: app._id,
    target: 'USER',
    users: users,
    payload: sub.payload,
    persistent: sub.persistent,
    createdAt: new Date(now),
    expiresAt: new Date(now + sub.ttlSeconds * 1000),
    traceId: sub.traceId ?? id,
    ...(sub.collapseKey ? { collapseKey: sub.collapseKey } : {}),
  };
  const release = async () => {
    if (sub.idempotencyKey) await deps.idempotency.release(app._id, sub.idempotencyKey).catch(() => undefined);
  };
  if (msg.persistent) {
    try {
      await deps.store.store(msg);
    } catch (err) {
      await release();
      throw new PushError('STORE_UNAVAILABLE', 'cannot store the message now; nothing was accepted', { status: 503, retriable: true, cause: err });
    }
    deps.metrics.stored.inc();
  }

  try {
    await deps.publisher.publish(deps.ingestTopic, ingestMessages(msg, users));
  } catch (err) {
    if (msg.persistent) {
      deps.logger.warn({ id, traceId: msg.traceId, err: (err as Error).message }, 'stored; publish deferred to the outbox');
      deps.metrics.deferred.inc();
      return { id, status: 'stored' };
    }
    await release();
    throw err;
  }
  deps.metrics.published.inc(users.length);
  if (msg.persistent) deps.markPublished(id);
  deps.logger.debug({ id, traceId: msg.traceId, recipients: users.length }, 'message accepted');
  return { id, status: 'accepted' };
}
