import type { Redis } from 'ioredis';
import type { Logger } from '../../platform/logger.js';
import { taskEventsChannel, type TaskState, type TaskStore } from '../../store/tasks.js';
import { Gauge, type Registry } from '../../platform/metrics.js';
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

export interface TaskRunnerDeps {
  tasks: TaskStore;
  subscriber: Redis;
  nodeId: string;
  logger: Logger;
  /** Metrics hooks: frames written (per chunk) and not written. */
  onWritten?: (n: number) => void;
  onDropped?: () => void;
  /** Where the runner's gauges (jobs, connections held, waiters) are registered. */
  registry?: Registry;
}

/**
 * Runs this node's share of group and broadcast tasks: writes to the local
 * connections in chunks, at the task's rate (its cluster rate divided by the
 * nodes it was sent to), pausing, resuming and stopping when an operator
 * says so. State changes arrive on a Redis channel at once and are also
 * polled, so a stop takes effect within one tick even if a message is lost.
 */
export class TaskRunner {
  /** State of each task with a job on this node; dropped with its last job. */
  private readonly states = new Map<string, TaskState>();
  /** Paused jobs waiting for a state change: one waker each, removed when it fires or times out. */
  private readonly wakers = new Map<string, Set<() => void>>();
  private readonly byMessage = new Map<string, Job>();
  private readonly active = new Set<Job>();
  /** Connections each running job still holds (a paused job keeps only the open ones). */
  private readonly held = new Map<Job, () => number>();
  private readonly poll: NodeJS.Timeout;
  private readonly flusher: NodeJS.Timeout;
  private readonly onWritten: (n: number) => void;
  private readonly onDropped: () => void;
  private closed = false;

  constructor(private readonly deps: TaskRunnerDeps) {
    this.onWritten = deps.onWritten ?? (() => undefined);
    this.onDropped = deps.onDropped ?? (() => undefined);
    this.listen();
    if (deps.registry) this.gauges(deps.registry);
    this.poll = setInterval(() => {
      for (const job of this.active) {
        void deps.tasks
          .hotState(job.taskId)
          .then((h) => h && this.states.has(job.taskId) && this.states.get(job.taskId) !== h.state && this.setState(job.taskId, h.state))
          .catch(() => undefined);
      }
    }, STATE_POLL_MS);
    this.flusher = setInterval(() => {
      for (const job of this.byMessage.values()) if (job.written !== job.flushedWritten || job.acked !== job.flushedAcked) void this.flush(job);
    }, PROGRESS_FLUSH_MS);
  }

  /** Writes `frame` of task `taskId` to `conns`, paced, until done, stopped or expired. Never rejects. */
  async run(taskId: string, messageId: string, frame: string | WireFrame, conns: Connection[], expiresAt: number): Promise<void> {
    const job: Job = { taskId, messageId, written: 0, acked: 0, flushedWritten: 0, flushedAcked: 0 };
    this.byMessage.set(messageId, job);
    if (this.byMessage.size > MAX_TRACKED_MESSAGES) this.byMessage.delete(this.byMessage.keys().next().value!);
    this.active.add(job);
    const cursor = { conns, i: 0 };
    this.held.set(job, () => cursor.conns.length - cursor.i);
    try {
      await this.deliver(job, frame, cursor, expiresAt);
      await this.flush(job, true);
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message, taskId }, 'task delivery failed');
    } finally {
      this.active.delete(job);
      this.held.delete(job);
      cursor.conns = [];
      // The state is kept only while a job of the task runs here (acks are counted by message id).
      if (![...this.active].some((j) => j.taskId === taskId)) this.states.delete(taskId);
    }
  }

  /** Counts acks of task messages (the ids of other messages are ignored). */
  onAck(ids: string[]): void {
    for (const id of ids) {
      const job = this.byMessage.get(id);
      if (job) job.acked++;
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.poll);
    clearInterval(this.flusher);
    for (const job of this.byMessage.values()) await this.flush(job);
  }

  /** The write loop of one job: `cursor.i` moves through `cursor.conns` as they are written. */
  private async deliver(job: Job, frame: string | WireFrame, cursor: { conns: Connection[]; i: number }, expiresAt: number): Promise<void> {
    const { taskId, messageId } = job;
    // One round trip before the first write: both go out on the same Redis connection, in order.
    const [hot] = await Promise.all([
      this.deps.tasks.hotState(taskId),
      this.deps.tasks.addProgress(taskId, this.deps.nodeId, { targeted: cursor.conns.length }),
    ]);
    this.states.set(taskId, hot?.state ?? 'running');
    // This node's share of the cluster rate, paced by elapsed time (not by
    // counting ticks, which run late under load and would slow the task down).
    const share = hot?.rate ? hot.rate / Math.max(1, hot.fanout) : Infinity;
    let pacedFrom = Date.now();
    let pacedWritten = 0;
    while (cursor.i < cursor.conns.length && !this.closed) {
      const state = this.states.get(taskId);
      if (state === 'stopped' || state === 'failed') break;
      // A slow or long-paused task must not deliver its message after it expired.
      if (Date.now() >= expiresAt) break;
      if (state === 'paused') {
        await this.pause(job, cursor);
        pacedFrom = Date.now();
        pacedWritten = 0;
        continue;
      }
      const n = share === Infinity ? UNPACED_CHUNK : Math.max(0, Math.floor((share * (Date.now() - pacedFrom + TICK_MS)) / 1000) - pacedWritten);
      const end = Math.min(cursor.conns.length, cursor.i + n);
      pacedWritten += end - cursor.i;
      const before = job.written;
      for (; cursor.i < end; cursor.i++) {
        const c = cursor.conns[cursor.i]!;
        if (!c.closed && c.deliverLive(messageId, frame)) job.written++;
        else this.onDropped();
      }
      this.onWritten(job.written - before);
      if (share === Infinity) await new Promise((r) => setImmediate(r));
      else if (cursor.i < cursor.conns.length) await tick();
    }
  }

  /**
   * A pause may last as long as the message lives: keep only the connections still to be
   * written that are open (a closed one would be dropped anyway), then wait for a change.
   */
  private async pause(job: Job, cursor: { conns: Connection[]; i: number }): Promise<void> {
    const before = cursor.conns.length - cursor.i;
    cursor.conns = cursor.conns.slice(cursor.i).filter((c) => !c.closed);
    cursor.i = 0;
    for (let n = cursor.conns.length; n < before; n++) this.onDropped();
    await this.flush(job);
    await this.waitForChange(job.taskId, STATE_POLL_MS);
  }

  private setState(taskId: string, state: TaskState): void {
    this.states.set(taskId, state);
    for (const wake of this.wakers.get(taskId) ?? []) wake();
    this.wakers.delete(taskId);
  }

  /** Task state changes published by operators; anyone who can publish to Redis writes here, so only "<id> <state>" is applied. */
  private listen(): void {
    const { subscriber, logger } = this.deps;
    // Prefixed like the keys: another stack's task events are not ours.
    const channel = taskEventsChannel(subscriber);
    void subscriber.subscribe(channel).catch((err: Error) => logger.warn({ err: err.message }, 'task channel subscribe failed'));
    subscriber.on('message', (from: string, text: string) => {
      if (from !== channel) return;
      try {
        const [id, state] = text.split(' ');
        if (id && state && STATES.has(state) && this.states.has(id)) this.setState(id, state as TaskState);
      } catch (err) {
        logger.warn({ err: (err as Error).message }, 'task event not applied');
      }
    });
  }

  private gauges(registry: Registry): void {
    const registers = [registry];
    const { active, states, held, wakers } = this;
    new Gauge({
      name: 'push_task_jobs',
      help: 'Broadcast task jobs on this node, by state (running, paused)',
      labelNames: ['state'],
      registers,
      collect() {
        let paused = 0;
        for (const job of active) if (states.get(job.taskId) === 'paused') paused++;
        this.set({ state: 'paused' }, paused);
        this.set({ state: 'running' }, active.size - paused);
      },
    });
    new Gauge({
      name: 'push_task_held_connections',
      help: 'Connections still to be written by the task jobs on this node',
      registers,
      collect() {
        let n = 0;
        for (const count of held.values()) n += count();
        this.set(n);
      },
    });
    new Gauge({
      name: 'push_task_waiters',
      help: 'Paused task jobs waiting for a state change (at most one per job)',
      registers,
      collect() {
        let n = 0;
        for (const w of wakers.values()) n += w.size;
        this.set(n);
      },
    });
  }

  private async flush(job: Job, finished = false): Promise<void> {
    const written = job.written - job.flushedWritten;
    const acked = job.acked - job.flushedAcked;
    job.flushedWritten = job.written;
    job.flushedAcked = job.acked;
    if (written || acked || finished) await this.deps.tasks.addProgress(job.taskId, this.deps.nodeId, { written, acked, finished }).catch(() => undefined);
  }

  /**
   * Resolves on the task's next state change or after `ms`. The waker is
   * removed either way: a paused task polls every 500 ms for as long as its
   * message lives (up to 30 days), and must not leave one behind each time.
   */
  private waitForChange(taskId: string, ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const set = this.wakers.get(taskId) ?? new Set();
      this.wakers.set(taskId, set);
      const wake = () => {
        clearTimeout(timer);
        resolve();
      };
      const timer = setTimeout(() => {
        set.delete(wake);
        if (set.size === 0 && this.wakers.get(taskId) === set) this.wakers.delete(taskId);
        resolve();
      }, ms);
      set.add(wake);
    });
  }
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, TICK_MS));

export function createTaskRunner(deps: TaskRunnerDeps): TaskRunner {
  return new TaskRunner(deps);
}
