import express, { Router, type RequestHandler } from 'express';
import { invalid, notFound } from '../../platform/errors.js';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { ORIGIN_HEADER } from '../../protocol/eventOrigin.js';
import { DLQ_ID, type DlqStore } from './dlqStore.js';

/** Header on a record re-produced from the DLQ: the dead letter's id. */
export const DLQ_REPLAY_HEADER = 'push-dlq-replay';
/** Ids one replay or purge request names at most; `all` handles at most this many too. */
export const MAX_DLQ_BATCH = 1000;

function selection(body: unknown): { ids?: string[]; all: boolean } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw invalid('body must be a JSON object');
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => k !== 'ids' && k !== 'all');
  if (unknown.length > 0) throw invalid(`unknown field ${unknown[0]}`, { field: unknown[0] });
  if (b.all !== undefined && typeof b.all !== 'boolean') throw invalid('all must be a boolean', { field: 'all' });
  const all = b.all === true;
  if (b.ids !== undefined) {
    if (!Array.isArray(b.ids) || b.ids.length === 0 || b.ids.length > MAX_DLQ_BATCH || !b.ids.every((i) => typeof i === 'string' && DLQ_ID.test(i))) {
      throw invalid(`ids must be a list of 1 to ${MAX_DLQ_BATCH} dead letter ids ("<partition>-<offset>")`, { field: 'ids' });
    }
    if (all) throw invalid('give either ids or all, not both');
    return { ids: [...new Set(b.ids as string[])], all: false };
  }
  if (!all) throw invalid('give ids (a list of dead letter ids) or all: true');
  return { all };
}

/**
 * Dead letter admin API (operator key):
 *   GET  /v1/admin/dlq?limit=50&sourceTopic=...   newest first, purged hidden
 *   GET  /v1/admin/dlq/:id
 *   POST /v1/admin/dlq/replay   { ids } | { all: true }   re-produce to the original topic
 *   POST /v1/admin/dlq/purge    { ids } | { all: true }
 */
export function dlqRoutes({
  store,
  publisher,
  auth,
  eventsTopic,
}: {
  store: DlqStore;
  publisher: BatchPublisher;
  auth: RequestHandler;
  eventsTopic: string;
}): Router {
  const router = Router();

  router.get('/v1/admin/dlq', auth, async (req, res) => {
    const limit = Number(req.query.limit ?? 50);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw invalid('limit must be an integer from 1 to 500', { field: 'limit' });
    const sourceTopic = req.query.sourceTopic;
    if (sourceTopic !== undefined && (typeof sourceTopic !== 'string' || sourceTopic.length === 0 || sourceTopic.length > 249)) {
      throw invalid('sourceTopic must be a topic name', { field: 'sourceTopic' });
    }
    res.json(await store.list({ limit, ...(sourceTopic ? { sourceTopic } : {}) }));
  });

  router.get('/v1/admin/dlq/:id', auth, async (req, res) => {
    const entry = await store.get(String(req.params.id));
    if (!entry) throw notFound(`no dead letter ${String(req.params.id)}`);
    res.json(entry);
  });

  router.post('/v1/admin/dlq/replay', auth, express.json({ limit: '64kb' }), async (req, res) => {
    const sel = selection(req.body);
    // `all` re-submits the entries not replayed yet; a named entry may be replayed again.
    const ids = sel.ids ?? (await store.ids(['new'], MAX_DLQ_BATCH));
    const failed: { id: string; reason: string }[] = [];
    let replayed = 0;
    for (const id of ids) {
      const rec = await store.record(id);
      if (!rec) {
        failed.push({ id, reason: 'no such dead letter (unknown or purged)' });
        continue;
      }
      if (rec.value === null) {
        failed.push({ id, reason: 'the dead letter has no value to re-submit' });
        continue;
      }
      try {
        // A business event keeps its original position as its identity (see eventOrigin.ts), so replaying it twice submits it once.
        const origin =
          rec.topic === eventsTopic && rec.headers[ORIGIN_HEADER] === undefined ? { [ORIGIN_HEADER]: `${rec.sourcePartition}:${rec.sourceOffset}` } : {};
        await publisher.publish(rec.topic, [{ key: rec.key, value: rec.value, headers: { ...rec.headers, ...origin, [DLQ_REPLAY_HEADER]: id } }]);
        await store.markReplayed(id);
        replayed++;
      } catch (err) {
        failed.push({ id, reason: (err as Error).message });
      }
    }
    res.json({ replayed, failed });
  });

  router.post('/v1/admin/dlq/purge', auth, express.json({ limit: '64kb' }), async (req, res) => {
    const sel = selection(req.body);
    const ids = sel.ids ?? (await store.ids(['new', 'replayed'], MAX_DLQ_BATCH));
    let purged = 0;
    for (const id of ids) if (await store.purge(id)) purged++;
    res.json({ purged });
  });
  return router;
}
