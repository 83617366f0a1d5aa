import type { Message } from 'kafkajs';
import { PushError } from '../../platform/errors.js';
import type { SubmitDeps } from './submitMessage.js';
import { ingestMessages } from './submitMessage.js';
import { block, live, takeBack, type Entry } from './batchEntries.js';

/**
 * Records in one publisher call at most, and their bytes: a part of push.events
 * is one or a few calls, each well within an app's share of the publish queue
 * (COLLECTOR_APP_QUEUE_SHARE of 20,000 records and 64 MiB by default), so a big
 * part is never refused as a whole for its size.
 */
const CALL_RECORDS = 1000;
const CALL_BYTES = 2 * 1024 * 1024;

const neverFits = (err: unknown) => err instanceof PushError && (err.code === 'RECORD_TOO_LARGE' || err.code === 'PUBLISH_TOO_LARGE');

/**
 * Publishes the ingest records of the live items, in item order: consecutive
 * items of one app share a publisher call (its records go out in order), and
 * the calls are made one after another, so an item is never published before
 * an earlier one; an item behind a failed one of its lane is skipped.
 */
export async function publishBatch(deps: SubmitDeps, entries: Entry[]): Promise<void> {
  const records = new Map<Entry, Message[]>();
  const calls: Entry[][] = [];
  let call: Entry[] = [];
  let count = 0;
  let bytes = 0;
  for (const e of live(entries)) {
    const recs = ingestMessages(e.msg!);
    records.set(e, recs);
    const size = recs.reduce((n, r) => n + (r.value as Buffer).length, 0);
    if (call.length > 0 && (call[0]!.item.app._id !== e.item.app._id || count + recs.length > CALL_RECORDS || bytes + size > CALL_BYTES)) {
      calls.push(call);
      call = [];
      count = bytes = 0;
    }
    call.push(e);
    count += recs.length;
    bytes += size;
  }
  if (call.length > 0) calls.push(call);
  for (const c of calls) await publishCall(deps, entries, c, records);
}

async function publishCall(deps: SubmitDeps, entries: Entry[], call: Entry[], records: Map<Entry, Message[]>): Promise<void> {
  block(entries);
  const go = call.filter((e) => e.outcome === undefined);
  if (go.length === 0) return;
  try {
    // Owned by the app: one app's fan-outs may hold only its share of the publish queue.
    await deps.publisher.publish(deps.ingestTopic, go.length === 1 ? records.get(go[0]!)! : go.flatMap((e) => records.get(e)!), go[0]!.item.app._id);
  } catch (err) {
    // One item that can never be published must not take the others with it: each alone.
    if (neverFits(err) && go.length > 1) {
      for (const e of go) await publishCall(deps, entries, [e], records);
      return;
    }
    for (const e of go) {
      // Behind an item of its lane that failed here: skipped (taken back), not left to the outbox ahead of it.
      block(entries);
      if (e.outcome === undefined) await publishFailed(deps, e, err);
    }
    return;
  }
  for (const e of go) {
    const msg = e.msg!;
    deps.metrics.published.inc(records.get(e)!.length);
    if (msg.persistent) deps.markPublished(e.id);
    deps.logger.debug({ id: e.id, traceId: msg.traceId, target: msg.target, taskId: msg.taskId }, 'message accepted');
    e.outcome = { result: { id: e.id, status: 'accepted', ...(msg.taskId ? { taskId: msg.taskId } : {}) } };
  }
}

/**
 * A stored persistent message stays for the outbox (answered `stored`); any
 * other is taken back and its key given back. A message refused before anything
 * was queued (it can never fit) is not kept either: checkFanout catches those
 * first; this is the backstop.
 */
async function publishFailed(deps: SubmitDeps, e: Entry, err: unknown): Promise<void> {
  const msg = e.msg!;
  if (msg.persistent && e.stored && !neverFits(err)) {
    deps.logger.warn({ id: e.id, traceId: msg.traceId, err: (err as Error).message }, 'stored; publish deferred to the outbox');
    deps.metrics.deferred.inc();
    e.outcome = { result: { id: e.id, status: 'stored', ...(msg.taskId ? { taskId: msg.taskId } : {}) } };
    return;
  }
  await takeBack(deps, e);
  e.outcome = { error: err };
}
