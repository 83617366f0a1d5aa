/** A forked tsx child process answering `{ cmd, req }` commands over IPC with `{ type: 'reply', req, ok, data | error }`. */
import { fork, type ChildProcess } from 'node:child_process';
import { track } from './processes.js';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class WorkerProcess {
  private req = 0;
  private readonly pending = new Map<number, Pending>();
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;

  /** `onOther` receives every message that is not a reply (e.g. per-second ticks). */
  constructor(file: string, onOther: (m: { type: string } & Record<string, unknown>) => void = () => undefined) {
    this.proc = track(fork(file, [], { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
    this.proc.on('message', (m: { type: string; req: number; ok: boolean; data?: unknown; error?: string }) => {
      if (m.type !== 'reply') return onOther(m);
      const p = this.pending.get(m.req);
      if (!p) return;
      this.pending.delete(m.req);
      if (m.ok) p.resolve(m.data);
      else p.reject(new Error(`${file}: ${m.error}`));
    });
    this.exited = new Promise((resolve) =>
      this.proc.once('exit', (code) => {
        for (const p of this.pending.values()) p.reject(new Error(`worker exited with ${code}`));
        this.pending.clear();
        resolve();
      }),
    );
  }

  get pid(): number {
    return this.proc.pid!;
  }

  call<T>(cmd: { cmd: string } & Record<string, unknown>): Promise<T> {
    const req = ++this.req;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(req, { resolve: resolve as (v: unknown) => void, reject });
      this.proc.send({ ...cmd, req });
    });
  }

  /** Asks the worker to exit; kills it if it has not after `timeoutMs`. */
  async close(timeoutMs = 5000): Promise<void> {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.disconnect();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Serves commands in a worker: `handlers[cmd](message)` answers each request. */
export function serveCommands(handlers: Record<string, (m: Record<string, unknown>) => Promise<unknown> | unknown>): void {
  process.on('message', (m: { cmd: string; req: number } & Record<string, unknown>) => {
    const h = handlers[m.cmd];
    Promise.resolve()
      .then(() => {
        if (!h) throw new Error(`unknown command ${m.cmd}`);
        return h(m);
      })
      .then(
        (data) => process.send?.({ type: 'reply', req: m.req, ok: true, data }),
        (err: Error) => process.send?.({ type: 'reply', req: m.req, ok: false, error: err.stack ?? err.message }),
      );
  });
  process.on('disconnect', () => process.exit(0));
}
