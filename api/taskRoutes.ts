import { Router, type RequestHandler, type Response } from 'express';
import { PushError, notFound } from '../platform/errors.js';
import { TaskTransitionError, type TaskState, type TaskStore } from '../store/tasks.js';
import { MESSAGE_ID_PATTERN } from '../protocol/codes.js';

const ACTIONS: Record<string, TaskState> = { pause: 'paused', resume: 'running', stop: 'stopped' };

/**
 * Task API: list, get, pause, resume, stop. `scope` decides which tasks the
 * caller may see: all of them (operator key) or its own app's (API key).
 */
export function taskRoutes({ tasks, auth, scope }: { tasks: TaskStore; auth: RequestHandler; scope: (res: Response) => string | undefined }): Router {
  const router = Router();
  const load = async (id: string, res: Response) => {
    if (!MESSAGE_ID_PATTERN.test(id)) throw notFound(`no task ${id}`);
    const task = await tasks.get(id);
    const app = scope(res);
    if (!task || (app !== undefined && task.app !== app)) throw notFound(`no task ${id}`);
    return task;
  };

  router.get('/v1/tasks', auth, async (req, res) => {
    const limit = Number(req.query.limit ?? 50);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new PushError('INVALID_REQUEST', 'limit must be an integer from 1 to 500', { status: 400 });
    const app = scope(res) ?? (typeof req.query.app === 'string' ? req.query.app : undefined);
    res.json({ tasks: await tasks.list({ app, limit }) });
  });

  router.get('/v1/tasks/:id', auth, async (req, res) => {
    res.json(await load(String(req.params.id), res));
  });

  router.post('/v1/tasks/:id/:action', auth, async (req, res) => {
    // Own keys only: `constructor` or `toString` must not find Object.prototype's.
    const action = String(req.params.action);
    const to = Object.hasOwn(ACTIONS, action) ? ACTIONS[action] : undefined;
    if (!to) throw notFound(`no action ${String(req.params.action)}; use pause, resume or stop`);
    const task = await load(String(req.params.id), res);
    try {
      res.json(await tasks.setState(task.id, to));
    } catch (err) {
      if (err instanceof TaskTransitionError) throw new PushError('INVALID_TRANSITION', err.message, { status: 409 });
      throw err;
    }
  });
  return router;
}
