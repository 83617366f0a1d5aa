import type { TaskState, TaskView } from '../../store/tasks.js';

/**
 * What the status API and the dashboard show for a task. MongoDB keeps the
 * task record for good, but its progress lives in Redis and only a dispatcher
 * that sees the task's record finishes it: a record the stored state still
 * calls running can belong to an earlier stack (Redis restarted without its
 * data), have outlived its state, have a message that expired before it
 * reached any node, or have been sent only to pusher runs that are gone (a
 * node restarted under the same id: see taskBoots.ts). None of those will
 * ever progress, so none is shown as running; the stored state is kept
 * alongside, and nothing is written.
 */
export type ShownTaskState = TaskState | 'unknown' | 'expired';

export interface ShownTask extends Omit<TaskView, 'state'> {
  state: ShownTaskState;
  /** The state the task record holds, when the one shown differs. */
  recordedState?: TaskState;
  /** Why the shown state differs from the recorded one. */
  note?: string;
}

/**
 * @param hotStatePresent whether Redis still holds the task's state (undefined: Redis could not be read, so the record is believed)
 * @param restarted nodes the task was sent to that run another boot now
 */
export function showTask(t: TaskView, hotStatePresent: boolean | undefined, now: number, restarted: string[] = []): ShownTask {
  if (t.state !== 'running' && t.state !== 'paused') return t;
  if (t.expiresAt && new Date(t.expiresAt).getTime() <= now) {
    return {
      ...t,
      state: 'expired',
      recordedState: t.state,
      etaSeconds: null,
      note: `its message expired at ${new Date(t.expiresAt).toISOString()}; nothing more will be delivered`,
    };
  }
  if (hotStatePresent === false) {
    return {
      ...t,
      state: 'unknown',
      recordedState: t.state,
      etaSeconds: null,
      note: 'its state is gone from Redis (a task of an earlier stack, a Redis restart, or its state expired); its progress cannot be known',
    };
  }
  const gone = new Set(restarted);
  if (gone.size > 0 && t.nodes.length > 0 && t.nodes.every((n) => n.finished || n.missed || gone.has(n.nodeId))) {
    const unfinished = t.nodes.filter((n) => !n.finished && gone.has(n.nodeId)).map((n) => n.nodeId);
    if (unfinished.length > 0) {
      return {
        ...t,
        state: 'done',
        recordedState: t.state,
        etaSeconds: null,
        note: `${unfinished.join(', ')} restarted before finishing its share (a restarted pusher does not resume a task): the progress shown is final`,
      };
    }
  }
  return t;
}
