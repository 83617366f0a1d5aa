import express, { Router, type RequestHandler } from 'express';
import { PushError, invalid, notFound } from '../../platform/errors.js';
import { MESSAGE_ID_PATTERN } from '../../protocol/codes.js';
import { parseReplayRequest } from './replayRequest.js';
import type { ReplayRunner } from './replayRunner.js';
import type { ReplayStore } from './replayStore.js';

/**
 * Replay admin API (operator key):
 *   POST /v1/admin/replays            start one (202) or dry-run it (200)
 *   GET  /v1/admin/replays            newest first
 *   GET  /v1/admin/replays/:id
 *   POST /v1/admin/replays/:id/stop   409 once it finished
 */
export function replayRoutes({
  runner,
  store,
  auth,
  maxRangeMs,
}: {
  runner: ReplayRunner;
  store: ReplayStore;
  auth: RequestHandler;
  maxRangeMs: number;
}): Router {
  const router = Router();
  const load = async (id: string) => {
    const replay = MESSAGE_ID_PATTERN.test(id) ? await store.get(id) : undefined;
    if (!replay) throw notFound(`no replay ${id}`);
    return replay;
  };

  router.post('/v1/admin/replays', auth, express.json({ limit: '8kb' }), async (req, res) => {
    const request = parseReplayRequest(req.body, { maxRangeMs });
    if (request.dryRun) res.json(await runner.dryRun(request));
    else res.status(202).json(await runner.start(request));
  });

  router.get('/v1/admin/replays', auth, async (req, res) => {
    const limit = Number(req.query.limit ?? 100);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw invalid('limit must be an integer from 1 to 500', { field: 'limit' });
    res.json({ replays: await store.list(limit) });
  });

  router.get('/v1/admin/replays/:id', auth, async (req, res) => {
    res.json(await load(String(req.params.id)));
  });

  router.post('/v1/admin/replays/:id/stop', auth, async (req, res) => {
    const replay = await load(String(req.params.id));
    if (replay.state !== 'running') throw new PushError('INVALID_TRANSITION', `replay ${replay.id} is ${replay.state} already`, { status: 409 });
    res.json(await runner.stop(replay));
  });
  return router;
}
