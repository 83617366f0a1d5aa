import type { Redis } from 'ioredis';
import type { Collection, Db } from 'mongodb';
import { liveNodeIds } from './nodeRegistry.js';
import { storable } from '../platform/mongo.js';

/**
 * Group and broadcast pushes are tasks: an id, a state an operator can
 * change, and progress per pusher node.
 *
 *   MongoDB  tasks                          the task record (survives everything)
 *   Redis    push:task:<id>                 hash: state, rate, fanout (hot copy); lives until
 *                                           the message expires, plus a day: a stop is
 *                                           honoured as long as the message could be delivered
 *            push:task:<id>:nodes           set of nodes the dispatcher sent it to
 *            push:task:<id>:n:<nodeId>      hash: targeted, written, acked, finished
 *                                           (both: 7 days while running, a day once finished or stopped)
 *            channel <prefix>push:task-events  "<id> <state>" on every state change
 */
export type TaskState = 'running' | 'paused' | 'stopped' | 'done' | 'failed';

export interface TaskRecord {
  _id: string;
  app: string;
  messageId: string;
  target: { group: string } | { all: true };
  persistent: boolean;
  /** Deliveries per second across the cluster; null = as fast as possible. */
  ratePerSecond: number | null;
  state: TaskState;
  createdAt: Date;
  updatedAt: Date;
  /** When the task's message expires (absent on tasks created before it was recorded). */
  expiresAt?: Date;
}

export interface NodeProgress {
  nodeId: string;
  targeted: number;
  written: number;
  acked: number;
  finished: boolean;
  /** The node stopped heartbeating before it finished (crash, restart). */
  missed: boolean;
}

export interface TaskView extends Omit<TaskRecord, '_id'> {
  id: string;
  nodes: NodeProgress[];
  totals: { targeted: number; written: number; acked: number };
  /** Estimated seconds left at the configured rate, when there is one. */
  etaSeconds: number | null;
}

export const TASK_EVENTS_CHANNEL = 'push:task-events';
/** The task channel of this stack: ioredis's keyPrefix does not apply to channel names, so it is put in front here. */
export const taskEventsChannel = (redis: Redis): string => `${redis.options.keyPrefix ?? ''}${TASK_EVENTS_CHANNEL}`;
const key = (id: string) => `push:task:${id}`;
const nodesKey = (id: string) => `push:task:${id}:nodes`;
const nodeKey = (id: string, node: string) => `push:task:${id}:n:${node}`;
/** Progress of a running task. */
const TASK_TTL_S = 7 * 86_400;
/** How long operators still see a finished or stopped task's progress (and its state after its message expired). */
export const FINISHED_TASK_KEEP_S = 86_400;
/** The longest message TTL the collector accepts (collector/src/validateMessage.ts), for tasks that do not record their expiry. */
const MAX_MESSAGE_TTL_S = 30 * 86_400;

/**
 * Seconds the hot state (and so a stop) must live: until the message can no
 * longer be delivered, plus the keep period. A stop that expired before its
 * message would let the message out again to every device that connects.
 */
export const stateTtlSeconds = (expiresAt: Date | undefined, now = Date.now()): number =>
  Math.ceil(expiresAt ? Math.max(0, expiresAt.getTime() - now) / 1000 : MAX_MESSAGE_TTL_S) + FINISHED_TASK_KEEP_S;

const TRANSITIONS: Record<TaskState, TaskState[]> = {
  running: ['paused', 'stopped', 'done'],
  paused: ['running', 'stopped'],
  stopped: [],
  done: [],
  failed: [],
};

export class TaskTransitionError extends Error {
  constructor(
    readonly from: TaskState,
    readonly to: TaskState,
  ) {
    super(`a ${from} task cannot become ${to}`);
  }
}

export interface TaskStore {
  create(task: Omit<TaskRecord, 'state' | 'createdAt' | 'updatedAt'>): Promise<void>;
  get(id: string): Promise<TaskView | undefined>;
  list(opts: { app?: string; limit: number }): Promise<TaskView[]>;
  /** Moves a task to a new state (validated) and tells every pusher at once. */
  setState(id: string, to: TaskState): Promise<TaskView>;
  /** The hot state pushers consult before each chunk of writes. */
  hotState(id: string): Promise<{ state: TaskState; rate: number | null; fanout: number } | undefined>;
  recordFanout(id: string, nodes: string[]): Promise<void>;
  /**
   * Which of these tasks an operator stopped. The hot state answers; a task
   * missing from Redis (lost, or from before the state outlived its message)
   * is looked up in MongoDB, so a stop is never forgotten while its message lives.
   */
  stopped(ids: string[]): Promise<Set<string>>;
  addProgress(id: string, node: string, delta: { targeted?: number; written?: number; acked?: number; finished?: boolean }): Promise<void>;
  ensureIndexes(): Promise<void>;
}

/**
 * Writes a new state to the hot copy, always with its lifetime (an HSET on a
 * key that expired would create one that never expires). Once a task is over
 * its progress rows are kept only for the keep period; its state (a stop)
 * stays as long as its message could still be delivered.
 */
async function writeState(redis: Redis, t: TaskRecord, state: TaskState, nodes: string[]): Promise<void> {
  const m = redis.multi().hset(key(t._id), 'state', state).expire(key(t._id), stateTtlSeconds(t.expiresAt));
  if (state === 'stopped' || state === 'done' || state === 'failed') {
    m.expire(nodesKey(t._id), FINISHED_TASK_KEEP_S);
    for (const n of nodes) m.expire(nodeKey(t._id, n), FINISHED_TASK_KEEP_S);
  }
  await m.exec();
}

/** A task as the API shows it: its record, each node's progress, totals; a running task whose nodes all finished is marked done here. */
async function viewOf(tasks: Collection<TaskRecord>, redis: Redis, t: TaskRecord): Promise<TaskView> {
  const [nodes, live, fannedOut] = await Promise.all([redis.smembers(nodesKey(t._id)), liveNodeIds(redis), redis.hget(key(t._id), 'fannedOut')]);
  const liveSet = new Set(live);
  const pipeline = redis.pipeline();
  for (const n of nodes) pipeline.hgetall(nodeKey(t._id, n));
  const rows = ((await pipeline.exec()) ?? []).map(([, h]) => (h ?? {}) as Record<string, string>);
  const progress: NodeProgress[] = nodes.map((nodeId, i) => {
    const h = rows[i]!;
    const finished = h.finished === '1';
    return {
      nodeId,
      targeted: Number(h.targeted ?? 0),
      written: Number(h.written ?? 0),
      acked: Number(h.acked ?? 0),
      finished,
      missed: !finished && !liveSet.has(nodeId),
    };
  });
  const totals = progress.reduce((acc, p) => ({ targeted: acc.targeted + p.targeted, written: acc.written + p.written, acked: acc.acked + p.acked }), {
    targeted: 0,
    written: 0,
    acked: 0,
  });
  let state = t.state;
  // Done when every node it went to has finished (or died trying); a task that
  // reached no node at all (no subscribers) is done as soon as that is known.
  if (state === 'running' && fannedOut === '1' && progress.every((p) => p.finished || p.missed)) {
    state = 'done';
    await tasks.updateOne({ _id: t._id, state: 'running' }, { $set: { state, updatedAt: new Date() } });
    await writeState(redis, t, state, nodes);
  }
  const left = totals.targeted - totals.written;
  const { _id, ...rest } = t;
  return {
    id: _id,
    ...rest,
    state,
    nodes: progress,
    totals,
    etaSeconds: t.ratePerSecond && state === 'running' ? Math.ceil(left / t.ratePerSecond) : null,
  };
}

export function createTaskStore({ db, redis }: { db: Db; redis: Redis }): TaskStore {
  const tasks = db.collection<TaskRecord>('tasks');
  const view = (t: TaskRecord) => viewOf(tasks, redis, t);

  return {
    async create(task) {
      const now = new Date();
      await tasks.insertOne({ ...task, state: 'running', createdAt: now, updatedAt: now });
      await redis
        .multi()
        .hset(key(task._id), { state: 'running', rate: task.ratePerSecond ?? 0, fanout: 0 })
        .expire(key(task._id), stateTtlSeconds(task.expiresAt))
        .exec();
    },

    async get(id) {
      const t = await tasks.findOne({ _id: id });
      return t ? view(t) : undefined;
    },

    async list({ app, limit }) {
      if (app !== undefined && !storable(app)) return [];
      const docs = await tasks
        .find(app ? { app } : {})
        .sort({ _id: -1 })
        .limit(limit)
        .toArray();
      return Promise.all(docs.map(view));
    },

    async setState(id, to) {
      const t = await tasks.findOne({ _id: id });
      if (!t) throw new Error(`no task ${id}`);
      const current = (await view(t)).state;
      if (!TRANSITIONS[current].includes(to)) throw new TaskTransitionError(current, to);
      await tasks.updateOne({ _id: id }, { $set: { state: to, updatedAt: new Date() } });
      await writeState(redis, t, to, await redis.smembers(nodesKey(id)));
      await redis.publish(taskEventsChannel(redis), `${id} ${to}`);
      return view({ ...t, state: to });
    },

    async hotState(id) {
      const h = await redis.hgetall(key(id));
      if (!h.state) return undefined;
      return { state: h.state as TaskState, rate: Number(h.rate) > 0 ? Number(h.rate) : null, fanout: Number(h.fanout ?? 0) };
    },

    async recordFanout(id, nodes) {
      const m = redis.multi();
      if (nodes.length > 0) m.sadd(nodesKey(id), ...nodes);
      // NX: the hot key already has its lifetime (until the message expires); one recreated here must not live forever.
      await m.hset(key(id), { fanout: nodes.length, fannedOut: 1 }).expire(key(id), stateTtlSeconds(undefined), 'NX').expire(nodesKey(id), TASK_TTL_S).exec();
    },

    async addProgress(id, node, delta) {
      const k = nodeKey(id, node);
      const m = redis.multi();
      if (delta.targeted) m.hincrby(k, 'targeted', delta.targeted);
      if (delta.written) m.hincrby(k, 'written', delta.written);
      if (delta.acked) m.hincrby(k, 'acked', delta.acked);
      if (delta.finished) m.hset(k, 'finished', 1);
      // A node that finished has nothing more to report: its row is kept for operators a day.
      await m.expire(k, delta.finished ? FINISHED_TASK_KEEP_S : TASK_TTL_S).exec();
    },

    async stopped(ids) {
      if (ids.length === 0) return new Set();
      // Redis unreachable: MongoDB answers for every id.
      const states = await Promise.all(ids.map((id) => redis.hget(key(id), 'state').catch(() => null)));
      const out = new Set(ids.filter((_, i) => states[i] === 'stopped'));
      const unknown = ids.filter((_, i) => states[i] === null);
      if (unknown.length > 0) {
        for (const t of await tasks.find({ _id: { $in: unknown }, state: 'stopped' }, { projection: { _id: 1 } }).toArray()) out.add(t._id);
      }
      return out;
    },

    async ensureIndexes() {
      await tasks.createIndex({ app: 1 });
    },
  };
}
