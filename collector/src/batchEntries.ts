import type { App } from '../../store/apps.js';
import type { StoredMessage } from '../../store/messages.js';
import { PushError } from '../../platform/errors.js';
import type { Submission } from './validateMessage.js';
import { isInfrastructureFailure } from './eventFailures.js';
import type { SubmitDeps, SubmitResult } from './submitMessage.js';

/** One validated submission of a batch. */
export interface BatchItem {
  app: App;
  sub: Submission;
  /**
   * Items of one lane (a push.events record's Kafka key) keep their order: once
   * one fails in a way a retry may fix, the later ones of its lane are not
   * submitted (`skipped`), so none is published before an earlier one.
   */
  lane: string;
  /** Keep the idempotency key at least until then (a push.events record's message expiry). */
  keepUntil?: Date;
}

/** What became of one item: submitted, refused (`error`), or not started because an earlier item of its lane failed. */
export type BatchOutcome = { result: SubmitResult } | { error: unknown } | { skipped: true };

/** An item on its way, with what the batch learns about it. */
export interface Entry {
  item: BatchItem;
  id: string;
  msg?: StoredMessage;
  /** Its idempotency key is claimed for `id` (to complete, or give back if it fails). */
  claimed: boolean;
  /** Its message may be in the store (taken back if it is not submitted after all). */
  stored: boolean;
  outcome?: BatchOutcome;
}

export const storeFailure = (message: string, cause: unknown) =>
  new PushError('STORE_UNAVAILABLE', `${message}; nothing was accepted`, { status: 503, retriable: true, cause });

/** Items still going on. */
export const live = (entries: Entry[]) => entries.filter((e) => e.outcome === undefined);

/**
 * Marks `skipped` every live item behind an item of its lane that failed in a
 * way a retry may fix (it runs again, and those after it with it).
 */
export function block(entries: Entry[]): void {
  const blocked = new Set<string>();
  for (const e of entries) {
    if (e.outcome === undefined && blocked.has(e.item.lane)) e.outcome = { skipped: true };
    else if (e.outcome !== undefined && 'error' in e.outcome && isInfrastructureFailure(e.outcome.error)) blocked.add(e.item.lane);
  }
}

/** Gives back the key claimed for an item that ends without a message. */
export async function release(deps: SubmitDeps, e: Entry): Promise<void> {
  if (!e.claimed) return;
  e.claimed = false;
  await deps.idempotency.release(e.item.app._id, e.item.sub.idempotencyKey!, e.id).catch(() => undefined);
}

/**
 * Takes an item's message back out of the store and gives its key back. When
 * the store cannot take it back, the key stays claimed (given up on): a retry
 * then finds the message, which the outbox publishes, instead of storing it twice.
 */
export async function takeBack(deps: SubmitDeps, e: Entry): Promise<void> {
  if (e.stored) {
    e.stored = false;
    const gone = await deps.store.unstore([e.id]).then(
      () => true,
      () => false,
    );
    if (!gone && e.claimed) {
      e.claimed = false;
      deps.idempotency.gaveUp(e.id);
      return;
    }
  }
  await release(deps, e);
}
