import type { Redis } from 'ioredis';
import type { Logger } from '../../common/src/logger.js';
import { taskEventsChannel, type TaskState, type TaskStore } from '../../common/src/tasks.js';
import { Gauge, type Registry } from '../../common/src/metrics.js';
import type { Connection } from './connection.js';
import type { WireFrame } from '../../platform/patches/wireFrame.js';

/** Pacing tick when a rate is set. */
const TICK_MS = 50;
/** Writes between yields to the event loop when no rate is set. */
const UNPACED_CHUNK = 1000;
const PROGRESS_FLUSH_MS = 200;
const STATE_POLL_MS = 500;
/** Message ids of recent tasks remembered for counting acks. */
const MAX_TRACKED_MESSAGES = 1000;
const STATES = new Set<string>(['running', 'paused', 'stopped', 'done', 'failed']);

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
  registry,
}: {
  tasks: TaskStore;
  subscriber: Redis;
  nodeId: string;
  logger: Logger;
  /** Metrics hooks: frames written (per chunk) and not written. */
  onWritten?: (n: number) => void;
  onDropped?: () => void;
  /** Where the runner's gauges (jobs, connections held, waiters) are registered. */
  registry?: Registry;
}) {
  /** State of each task with a job on this node; dropped with its last job. */
  const states = new Map<string, TaskState>();
  /** Paused jobs waiting for a state change: one waker each, removed when it fires or times out. */
  const wakers = new Map<string, Set<() => void>>();
  const byMessage = new Map<string, Job>();
  const active = new Set<Job>();
  /** Connections each running job still holds (a paused job keeps only the open ones). */
  const held = new Map<Job, () => number>();
  let closed = false;

  const setState = (taskId: string, state: TaskState) => {
    states.set(taskId, state);
    for (const wake of wakers.get(taskId) ?? []) wake();
    wakers.delete(taskId);
  };
  // Prefixed like the keys: another stack's task events are not ours.
  const channel = taskEventsChannel(subscriber);
  void subscriber.subscribe(channel).catch((err: Error) => logger.warn({ err: err.message }, 'task channel subscribe failed'));
  subscriber.on('message', (from: string, text: string) => {
    if (from !== channel) return;
    // Anyone who can publish to Redis writes here: ignore what is not "<id> <state>".
    try {
      const [id, state] = text.split(' ');
      if (id && state && STATES.has(state) && states.has(id)) setState(id, state as TaskState);
    } catch (err) {
      logger.warn({ err: (err as Error).message }, 'task event not applied');
    }
  });
  if (registry) {
    const registers = [registry];
    new Gauge({ name: 'push_task_jobs', help: 'Broadcast task jobs on this node, by state (running, paused)', labelNames: ['state'], registers, collect() {
      let paused = 0;
      for (const job of active) if (states.get(job.taskId) === 'paused') paused++;
      this.set({ state: 'paused' }, paused);
      this.set({ state: 'running' }, active.size - paused);
    } });
    new Gauge({ name: 'push_task_held_connections', help: 'Connections still to be written by the task jobs on this node', registers, collect() {
      let n = 0;
      for (const count of held.values()) n += count();
      this.set(n);
    } });
    new Gauge({ name: 'push_task_waiters', help: 'Paused task jobs waiting for a state change (at most one per job)', registers, collect() {
      let n = 0;
      for (const w of wakers.values()) n += w.size;
      this.set(n);
    } });
  }
  const poll = setInterval(() => {
    for (const job of active) {
      void tasks.hotState(job.taskId).then((h) => h && states.has(job.taskId) && states.get(job.taskId) !== h.state && setState(job.taskId, h.state)).catch(() => undefined);
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

  /**
   * Resolves on the task's next state change or after `ms`. The waker is
   * removed either way: a paused task polls every 500 ms for as long as its
   * message lives (up to 30 days), and must not leave one behind each time.
   */
  const waitForChange = (taskId: string, ms: number) =>
    new Promise<void>((resolve) => {
      const set = wakers.get(taskId) ?? new Set();
      wakers.set(taskId, set);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        set.delete(wake);
        if (set.size === 0 && wakers.get(taskId) === set) wakers.delete(taskId);
        resolve();
      }, ms);
      set.add(wake);
    });
  const tick = () => new Promise<void>((resolve) => setTimeout(resolve, TICK_MS));

  async function run(taskId: string, messageId: string, frame: string | WireFrame, conns: Connection[], expiresAt: number): Promise<void> {
    const job: Job = { taskId, messageId, written: 0, acked: 0, flushedWritten: 0, flushedAcked: 0 };
    byMessage.set(messageId, job);
    if (byMessage.size > MAX_TRACKED_MESSAGES) byMessage.delete(byMessage.keys().next().value!);
    active.add(job);
    let i = 0;
    held.set(job, () => conns.length - i);
    try {
      // One round trip before the first write: both go out on the same Redis connection, in order.
      const [hot] = await Promise.all([tasks.hotState(taskId), tasks.addProgress(taskId, nodeId, { targeted: conns.length })]);
      states.set(taskId, hot?.state ?? 'running');
      // This node's share of the cluster rate, paced by elapsed time (not by
      // counting ticks, which run late under load and would slow the task down).
      const share = hot?.rate ? hot.rate / Math.max(1, hot.fanout) : Infinity;
      let pacedFrom = Date.now();
      let pacedWritten = 0;
      while (i < conns.length && !closed) {
        const state = states.get(taskId);
        if (state === 'stopped' || state === 'failed') break;
        // A slow or long-paused task must not deliver its message after it expired.
        if (Date.now() >= expiresAt) break;
        if (state === 'paused') {
          // A pause may last as long as the message lives: keep only the connections
          // still to be written that are open (a closed one would be dropped anyway).
          const before = conns.length - i;
          conns = conns.slice(i).filter((c) => !c.closed);
          i = 0;
          for (let n = conns.length; n < before; n++) onDropped();
          await flush(job);
          await waitForChange(taskId, STATE_POLL_MS);
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
      held.delete(job);
      conns = [];
      // The state is kept only while a job of the task runs here (acks are counted by message id).
      if (![...active].some((j) => j.taskId === taskId)) states.delete(taskId);
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
