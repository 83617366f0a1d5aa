import { fork, spawn, type ChildProcess, type ForkOptions, type SpawnOptions } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';

/**
 * Child processes of a benchmark, each the leader of its own process group, so
 * that one kill takes it and everything it started. `killAll` runs on exit and
 * on SIGINT/SIGTERM, so an interrupted or failed run leaves nothing behind.
 */
const groups = new Set<ChildProcess>();

function killGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGKILL'): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    /* already gone */
  }
}

const loosePids = new Set<number>();

export function killAll(): void {
  for (const c of groups) killGroup(c);
  groups.clear();
  for (const pid of loosePids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
  loosePids.clear();
}

/** Also SIGKILL these processes (started by someone else's helper) if the benchmark exits before untracking them. */
export function trackPids(pids: number[]): void {
  hookExit();
  for (const p of pids) loosePids.add(p);
}

export function untrackPids(pids: number[]): void {
  for (const p of pids) loosePids.delete(p);
}

let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

function track(child: ChildProcess): ChildProcess {
  hookExit();
  groups.add(child);
  child.once('exit', () => groups.delete(child));
  return child;
}

/** `spawn` in a new process group, tracked for killAll. */
export function spawnGroup(cmd: string, args: string[], opts: SpawnOptions = {}): ChildProcess {
  return track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts, detached: true }));
}

/** A TypeScript module as an IPC child (`node --import tsx`), in a new process group. */
export function forkTs(file: string, args: string[] = [], opts: ForkOptions = {}): ChildProcess {
  return track(fork(file, args, { execArgv: ['--import', 'tsx'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...opts, detached: true }));
}

/** Stops a tracked child: `signal` to its group, SIGKILL after `graceMs`. Resolves when it has exited. */
export async function stopGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  killGroup(child, signal);
  const t = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await exited;
  clearTimeout(t);
  killGroup(child, 'SIGKILL'); // anything the child left in its group
  groups.delete(child);
}

/** The pid and all its descendants (from /proc). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(d));
      children.set(ppid, list);
    } catch {
      /* exited meanwhile */
    }
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length) {
    const p = stack.pop()!;
    out.push(p);
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

/** Resident set size in bytes of one process (0 if it is gone). */
export function rssBytes(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Summed RSS in bytes of the given processes and their descendants. */
export function rssOfTrees(pids: number[]): number {
  return pids.flatMap(processTree).reduce((sum, p) => sum + rssBytes(p), 0);
}

/** CPU time (user + system) in seconds of one process, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return 0;
  }
}

/** Waits for the first IPC message from `child` that satisfies `match`, bounded by `timeoutMs`. */
export function nextMessage<T>(child: ChildProcess, match: (m: { ev?: string }) => boolean, timeoutMs: number, what = 'a message'): Promise<T> {
  return new Promise((resolve, reject) => {
    const onMsg = (m: { ev?: string; message?: unknown }) => {
      const failed = m?.ev === 'error';
      if (!failed && !match(m)) return;
      cleanup();
      if (failed) reject(new Error(`${what}: ${String(m.message)}`));
      else resolve(m as T);
    };
    const onExit = (code: number | null, sig: string | null) => {
      cleanup();
      reject(new Error(`child exited (${code ?? sig}) while waiting for ${what}`));
    };
    const t = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
    }, timeoutMs);
    const cleanup = () => {
      clearTimeout(t);
      child.off('message', onMsg);
      child.off('exit', onExit);
    };
    child.on('message', onMsg);
    child.once('exit', onExit);
  });
}
