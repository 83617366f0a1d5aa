import type { App } from '../../store/apps.js';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import type { MessagesStore, StoredMessage } from '../../store/messages.js';
import type { WriteBatcher } from '../../store/writeBatcher.js';
import type { Logger } from '../../platform/logger.js';
import type { IdempotencyKeys } from '../../store/idempotency.js';
import type { TaskStore } from '../../store/tasks.js';
import { recordKey, userRecordKey } from '../../protocol/recordKeys.js';
import { encodeRecord, encodeRecordsVarying, latestSchemaId, SCHEMA_HEADER } from '../../schemas/registry.js';
import type { IngestRecord } from '../../schemas/types.js';
import type { Submission } from './validateMessage.js';
import type { CollectorMetrics } from './collectorMetrics.js';
import type { FanoutLimits } from './checkFanout.js';
import { submitBatch } from './submitBatch.js';

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
 * The one path every message takes, from HTTP (this, a batch of one) or
 * push.events (submitBatch with a part of records): idempotency, store first
 * (persistent), then publish. A persistent message that is stored is never
 * lost: if Kafka fails it stays unpublished for the outbox sweeper.
 */
export async function submitMessage(deps: SubmitDeps, app: App, sub: Submission): Promise<SubmitResult> {
  const [outcome] = await submitBatch(deps, [{ app, sub, lane: '' }]);
  if (outcome && 'result' in outcome) return outcome.result;
  // A batch of one has no earlier item to be skipped behind.
  throw outcome && 'error' in outcome ? outcome.error : new Error('submission skipped');
}
