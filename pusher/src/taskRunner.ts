import type { Redis } from 'ioredis';
import type { Logger } from '../../common/src/logger.js';
import { TASK_EVENTS_CHANNEL, type TaskState, type TaskStore } from '../../common/src/tasks.js';
import type { Connection } from './connection.js';
import type { WireFrame } from './wireFrame.js';

/** Pacing tick when a rate is set. */
const TICK_MS = 50;
/** Writes between yields to the event loop when no rate is set. */
const UNPACED_CHUNK = 1000;
const PROGRESS_FLUSH_MS = 200;
const STATE_POLL_MS = 500;
/** Message ids of recent tasks remembered for counting acks. */
const MAX_TRACKED_MESSAGES = 1000;

interface Job {
  taskId: string;
  messageId: string;
  written: number;
  acked: number;
  flushedWritten: number;
  flushedAcked: number;
}

/**
 * Runs this node's share of group and broadcast tasks: writes to the local
 * connections in chunks, at the task's rate (its cluster rate divided by the
 * nodes it was sent to), pausing, resuming and stopping when an operator
 * says so. State changes arrive on a Redis channel at once and are also
 * polled, so a stop takes effect within one tick even if a message is lost.
 */
export function createTaskRunner({
  tasks,
  subscriber,
  nodeId,
  logger,
  onWritten = () => undefined,
  onDropped = () => undefined,
}: {
  tasks: TaskStore;
  subscriber: Redis;
  nodeId: string;
  logger: Logger;
  /** Metrics hooks: frames written (per chunk) and not written. */
  onWritten?: (n: number) => void;
  onDropped?: () => void;
}) {
  const states = new Map<string, TaskState>();
  const wakers = new Map<string, (() => void)[]>();
  const byMessage = new Map<string, Job>();
  const active = new Set<Job>();
  let closed = false;

  const setState = (taskId: string, state: TaskState) => {
    states.set(taskId, state);
    for (const wake of wakers.get(taskId) ?? []) wake();
    wakers.delete(taskId);
  };
  void subscriber.subscribe(TASK_EVENTS_CHANNEL).catch((err: Error) => logger.warn({ err: err.message }, 'task channel subscribe failed'));
  subscriber.on('message', (channel: string, text: string) => {
    if (channel !== TASK_EVENTS_CHANNEL) return;
    const [id, state] = text.split(' ');
    if (id && state && states.has(id)) setState(id, state as TaskState);
  });
  const poll = setInterval(() => {
    for (const job of active) {
      void tasks.hotState(job.taskId).then((h) => h && states.get(job.taskId) !== h.state && setState(job.taskId, h.state)).catch(() => undefined);
    }
  }, STATE_POLL_MS);

  const flush = async (job: Job, finished = false) => {
    const written = job.written - job.flushedWritten;
    const acked = job.acked - job.flushedAcked;
    job.flushedWritten = job.written;
    job.flushedAcked = job.acked;
    if (written || acked || finished) await tasks.addProgress(job.taskId, nodeId, { written, acked, finished }).catch(() => undefined);
  };
  const flusher = setInterval(() => {
    for (const job of byMessage.values()) if (job.written !== job.flushedWritten || job.acked !== job.flushedAcked) void flush(job);
  }, PROGRESS_FLUSH_MS);

  const waitForChange = (taskId: string) => new Promise<void>((resolve) => wakers.set(taskId, [...(wakers.get(taskId) ?? []), resolve]));
  const tick = () => new Promise<void>((resolve) => setTimeout(resolve, TICK_MS));

  async function run(taskId: string, messageId: string, frame: string | WireFrame, conns: Connection[], expiresAt: number): Promise<void> {
    const job: Job = { taskId, messageId, written: 0, acked: 0, flushedWritten: 0, flushedAcked: 0 };
    byMessage.set(messageId, job);
    if (byMessage.size > MAX_TRACKED_MESSAGES) byMessage.delete(byMessage.keys().next().value!);
    active.add(job);
    try {
      // One round trip before the first write: both go out on the same Redis connection, in order.
      const [hot] = await Promise.all([tasks.hotState(taskId), tasks.addProgress(taskId, nodeId, { targeted: conns.length })]);
      states.set(taskId, hot?.state ?? 'running');
      // This node's share of the cluster rate, paced by elapsed time (not by
      // counting ticks, which run late under load and would slow the task down).
      const share = hot?.rate ? hot.rate / Math.max(1, hot.fanout) : Infinity;
      let pacedFrom = Date.now();
      let pacedWritten = 0;
      let i = 0;
      while (i < conns.length && !closed) {
        const state = states.get(taskId);
        if (state === 'stopped' || state === 'failed') break;
        // A slow or long-paused task must not deliver its message after it expired.
        if (Date.now() >= expiresAt) break;
        if (state === 'paused') {
          await flush(job);
          await Promise.race([waitForChange(taskId), new Promise((r) => setTimeout(r, STATE_POLL_MS))]);
          pacedFrom = Date.now();
          pacedWritten = 0;
          continue;
        }
        const n = share === Infinity ? UNPACED_CHUNK : Math.max(0, Math.floor((share * (Date.now() - pacedFrom + TICK_MS)) / 1000) - pacedWritten);
        const end = Math.min(conns.length, i + n);
        pacedWritten += end - i;
        const before = job.written;
        for (; i < end; i++) {
          const c = conns[i]!;
          if (!c.closed && c.deliverLive(messageId, frame)) job.written++;
          else onDropped();
        }
        onWritten(job.written - before);
        if (share === Infinity) await new Promise((r) => setImmediate(r));
        else if (i < conns.length) await tick();
      }
      await flush(job, true);
    } catch (err) {
      logger.warn({ err: (err as Error).message, taskId }, 'task delivery failed');
    } finally {
      active.delete(job);
    }
  }

  return {
    run,
    /** Counts acks of task messages (the ids of other messages are ignored). */
    onAck(ids: string[]): void {
      for (const id of ids) {
        const job = byMessage.get(id);
        if (job) job.acked++;
      }
    },
    async close() {
      closed = true;
      clearInterval(poll);
      clearInterval(flusher);
      for (const job of byMessage.values()) await flush(job);
    },
  };
}
