import type { StoredMessage } from '../../store/messages.js';
import type { IdempotencyClaim } from '../../store/idempotency.js';
import { newId } from '../../protocol/ids.js';
import { PushError } from '../../platform/errors.js';
import { checkFanout } from './checkFanout.js';
import { DEFAULT_FANOUT_LIMITS, type SubmitDeps } from './submitMessage.js';
export type { BatchItem, BatchOutcome } from './batchEntries.js';
import { block, live, release, storeFailure, takeBack, type BatchItem, type BatchOutcome, type Entry } from './batchEntries.js';
import { publishBatch } from './publishBatch.js';

/**
 * The submission protocol for many messages at once, shared by HTTP (a batch
 * of one) and push.events (a part of a fetched batch): fan-out bounds, one
 * claim of the idempotency keys, the persistent messages stored before
 * anything is published (their writes gathered by `deps.messages` into one
 * store batch), broadcast tasks, the ingest records published in a few
 * publisher calls in item order, then the keys completed. A persistent message
 * that is stored is never lost: if Kafka fails it is answered `stored` and the
 * outbox publishes it. Keys of items that end without a message are given
 * back. Idempotency keys must be distinct within a batch.
 */
export async function submitBatch(deps: SubmitDeps, items: BatchItem[]): Promise<BatchOutcome[]> {
  const entries: Entry[] = items.map((item) => ({ item, id: newId(), claimed: false, stored: false }));
  for (const e of entries) {
    try {
      // Refused before anything is claimed, stored or built (413): its records could never be published.
      const { app, sub } = e.item;
      checkFanout(
        {
          app: app._id,
          users: sub.to.kind === 'users' ? sub.to.users : undefined,
          group: sub.to.kind === 'group' ? sub.to.group : undefined,
          payload: sub.payload,
          traceId: sub.traceId,
          collapseKey: sub.collapseKey,
        },
        deps.fanout ?? DEFAULT_FANOUT_LIMITS,
      );
    } catch (err) {
      e.outcome = { error: err };
    }
  }
  await claimKeys(deps, entries);
  block(entries);
  await storePersistent(deps, entries);
  block(entries);
  await createTasks(deps, entries);
  block(entries);
  await publishBatch(deps, entries);
  await finish(deps, entries);
  return entries.map((e) => e.outcome!);
}

async function claimKeys(deps: SubmitDeps, entries: Entry[]): Promise<void> {
  const keyed = live(entries).filter((e) => e.item.sub.idempotencyKey);
  if (keyed.length === 0) return;
  let claims: IdempotencyClaim[];
  try {
    const one = keyed.length === 1 && !keyed[0]!.item.keepUntil ? keyed[0]! : undefined;
    claims = one
      ? [await deps.idempotency.claim(one.item.app._id, one.item.sub.idempotencyKey!, one.id)]
      : await deps.idempotency.claimMany(
          keyed.map((e) => ({ app: e.item.app._id, key: e.item.sub.idempotencyKey!, msgId: e.id, keepUntil: e.item.keepUntil })),
        );
  } catch (err) {
    const failure = storeFailure(keyed.length === 1 ? 'cannot check the idempotency key now' : 'cannot check idempotency keys now', err);
    for (const e of keyed) e.outcome = { error: failure };
    return;
  }
  keyed.forEach((e, i) => {
    const claim = claims[i]!;
    if (claim.state === 'claimed') e.claimed = true;
    else if (claim.state === 'duplicate') {
      deps.metrics.duplicates.inc();
      e.outcome = { result: { id: claim.id, status: 'accepted', duplicate: true } };
    } else {
      e.outcome = {
        error: new PushError('IDEMPOTENCY_IN_PROGRESS', 'a submission with this idempotency key is still being handled; retry shortly', {
          status: 409,
          retriable: true,
        }),
      };
    }
  });
}

function messageOf(e: Entry, now: number): StoredMessage {
  const { app, sub } = e.item;
  const to = sub.to;
  return {
    _id: e.id,
    app: app._id,
    target: to.kind === 'users' ? 'USER' : to.kind === 'group' ? 'GROUP' : 'ALL',
    ...(to.kind === 'users' ? { users: to.users } : {}),
    ...(to.kind === 'group' ? { group: to.group } : {}),
    ...(to.kind === 'users' ? {} : { taskId: newId(now) }),
    payload: sub.payload,
    persistent: sub.persistent,
    createdAt: new Date(now),
    expiresAt: new Date(now + sub.ttlSeconds * 1000),
    traceId: sub.traceId ?? e.id,
    ...(sub.collapseKey ? { collapseKey: sub.collapseKey } : {}),
  };
}

/** The persistent messages, in one store write per batch of the write batcher (all at once, so one for a part). */
async function storePersistent(deps: SubmitDeps, entries: Entry[]): Promise<void> {
  const now = Date.now();
  for (const e of live(entries)) e.msg = messageOf(e, now);
  const persistent = live(entries).filter((e) => e.msg!.persistent);
  await Promise.all(
    persistent.map(async (e) => {
      e.stored = true;
      try {
        await deps.messages.add(e.msg!);
      } catch (err) {
        // A write that failed on the wire may still have been applied: only a message known
        // not to be stored gives its key back (else the key stays claimed, and a retry finds
        // the message once the store answers again instead of storing it a second time).
        const stored = await deps.store.isStored(e.id).catch(() => undefined);
        if (stored === true) return deps.metrics.stored.inc();
        e.stored = false;
        if (stored === false) await release(deps, e);
        else deps.idempotency.gaveUp(e.id);
        e.claimed = false;
        e.outcome = { error: storeFailure('cannot store the message now', err) };
        return;
      }
      deps.metrics.stored.inc();
    }),
  );
}

async function createTasks(deps: SubmitDeps, entries: Entry[]): Promise<void> {
  await Promise.all(
    live(entries)
      .filter((e) => e.msg!.taskId)
      .map(async (e) => {
        const { app, sub } = e.item;
        try {
          await deps.tasks.create({
            _id: e.msg!.taskId!,
            app: app._id,
            messageId: e.id,
            target: sub.to.kind === 'group' ? { group: sub.to.group } : { all: true },
            persistent: sub.persistent,
            ratePerSecond: sub.ratePerSecond ?? null,
            // A stop must outlive the message (store/tasks.ts).
            expiresAt: e.msg!.expiresAt,
          });
        } catch (err) {
          // A stored persistent broadcast without its task could not be tracked or stopped.
          await takeBack(deps, e);
          e.outcome = { error: storeFailure('cannot create the broadcast task now', err) };
        }
      }),
  );
}

/** Completes the keys of the items submitted (together: one write) and gives back those of items skipped. */
async function finish(deps: SubmitDeps, entries: Entry[]): Promise<void> {
  await Promise.all(
    entries.map(async (e) => {
      if (e.outcome && 'skipped' in e.outcome) return takeBack(deps, e);
      if (!e.claimed || !e.outcome || !('result' in e.outcome)) return;
      const { app, sub, keepUntil } = e.item;
      await deps.idempotency.complete(app._id, sub.idempotencyKey!, e.id, keepUntil ? { keepUntil } : {}).catch((err: Error) =>
        // Left in progress: a retry resolves it by looking the message up (store/idempotency.ts).
        deps.logger.warn({ err: err.message, id: e.id }, 'could not mark the idempotency key complete'),
      );
    }),
  );
}
