import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export type Log = (line: string) => void;

export const silentLog: Log = () => {};

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Common shape of every server handle returned by startKafka/startRedis/startMongo. */
export interface ServerHandle {
  readonly pid: number;
  /** SIGTERM, wait up to 30s, then SIGKILL. */
  stop(): Promise<void>;
  /** SIGKILL at once, like `kill -9` (for fault tests). */
  kill(): Promise<void>;
}

export function which(cmd: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, cmd);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True when pid exists and is not a zombie (a reaped-later child still answers kill(0)). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (process.platform !== 'linux') return true;
  // A zombie leader is dead only once every thread is gone: a SIGKILLed JVM shows Z for its main thread
  // while other threads still tear down and still hold its listening sockets.
  try {
    return fs.readdirSync(`/proc/${pid}/task`).some((tid) => procState(`/proc/${pid}/task/${tid}/stat`) !== 'Z');
  } catch {
    return false;
  }
}

function procState(statFile: string): string {
  try {
    const stat = fs.readFileSync(statFile, 'utf8');
    return stat.charAt(stat.lastIndexOf(')') + 2);
  } catch {
    return 'Z';
  }
}

/** Guards against pid reuse: the live process must still look like the server we started. */
function cmdlineMatches(pid: number, needles: string[]): boolean {
  let cmdline: string;
  try {
    cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
  } catch {
    return process.platform !== 'linux';
  }
  return needles.every((n) => cmdline.includes(n));
}

export function readPidFile(pidFile: string): number | undefined {
  try {
    const pid = Number.parseInt(fs.readFileSync(pidFile, 'utf8').trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Pid from our pid file if that process is alive and still ours; otherwise undefined. */
export function livePid(pidFile: string, needles: string[]): number | undefined {
  const pid = readPidFile(pidFile);
  return pid !== undefined && isAlive(pid) && cmdlineMatches(pid, needles) ? pid : undefined;
}

export function removePidFile(pidFile: string, pid: number): void {
  if (readPidFile(pidFile) === pid) fs.rmSync(pidFile, { force: true });
}

export function signal(pid: number, sig: NodeJS.Signals): void {
  // Servers run detached, i.e. lead their own process group: signal the whole group.
  try {
    process.kill(-pid, sig);
    return;
  } catch {
    // not a group leader (or already gone)
  }
  try {
    process.kill(pid, sig);
  } catch {
    // already gone
  }
}

export async function waitExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isAlive(pid)) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

export async function stopPid(pid: number, pidFile: string, graceMs = 30_000): Promise<void> {
  signal(pid, 'SIGTERM');
  if (!(await waitExit(pid, graceMs))) {
    signal(pid, 'SIGKILL');
    await waitExit(pid, 10_000);
  }
  removePidFile(pidFile, pid);
}

export async function killPid(pid: number, pidFile: string): Promise<void> {
  signal(pid, 'SIGKILL');
  await waitExit(pid, 10_000);
  removePidFile(pidFile, pid);
}

/** Stop and kill controls of a server known by its pid and pid file. */
export function pidControls(pid: number, pidFile: string): ServerHandle {
  return { pid, stop: () => stopPid(pid, pidFile), kill: () => killPid(pid, pidFile) };
}

/** Starts a long-lived server in its own process group with output appended to logFile. */
export async function spawnDetached(
  cmd: string,
  args: string[],
  opts: { cwd: string; logFile: string; pidFile: string; env?: NodeJS.ProcessEnv },
): Promise<ChildProcess & { pid: number }> {
  const fd = fs.openSync(opts.logFile, 'a');
  try {
    const child = spawn(cmd, args, {
      cwd: opts.cwd,
      env: opts.env ?? process.env,
      detached: true,
      stdio: ['ignore', fd, fd],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    child.unref();
    const pid = child.pid as number;
    fs.writeFileSync(opts.pidFile, `${pid}\n`);
    return Object.assign(child, { pid });
  } finally {
    fs.closeSync(fd);
  }
}

/** Polls `ready` until it answers true; fails early if the process died. */
export async function waitReady(what: string, pid: number, ready: () => Promise<boolean>, opts: { timeoutMs: number; logFiles: string[] }): Promise<void> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const answered = await ready();
    const dead = !isAlive(pid);
    if (answered && !dead) return;
    if (dead || Date.now() > deadline) {
      const why = dead ? 'exited during startup' : `did not answer within ${opts.timeoutMs / 1000}s`;
      throw new Error(`${what} ${why}.${opts.logFiles.map((f) => tailOf(f)).join('')}`);
    }
    await sleep(300);
  }
}

export function tailOf(file: string, lines = 15): string {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    if (!text) return '';
    return `\n--- last lines of ${file} ---\n${text.split('\n').slice(-lines).join('\n')}`;
  } catch {
    return '';
  }
}

/** Runs a provisioning command to completion, output appended to logFile; rejects with its tail. */
export function runCommand(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; logFile: string }): Promise<string> {
  fs.mkdirSync(path.dirname(opts.logFile), { recursive: true });
  fs.appendFileSync(opts.logFile, `\n$ ${cmd} ${args.join(' ')}\n`);
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const collect = (chunk: Buffer): void => {
      out += chunk.toString();
      fs.appendFileSync(opts.logFile, chunk);
    };
    child.stdout.on('data', collect);
    child.stderr.on('data', collect);
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`\`${cmd} ${args.join(' ')}\` failed (exit ${code}).${tailOf(opts.logFile)}`));
    });
  });
}

/** Prints "<label>... 45s" every 15s while fn runs, so slow first-time steps don't look hung. */
export async function withProgress<T>(log: Log, label: string, fn: () => Promise<T>): Promise<T> {
  const started = Date.now();
  const timer = setInterval(() => log(`${label}... ${Math.round((Date.now() - started) / 1000)}s`), 15_000);
  try {
    return await fn();
  } finally {
    clearInterval(timer);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function portOpen(port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** Refuse to start when a port is taken: the readiness probe would otherwise talk to the squatter. */
export async function assertPortsFree(what: string, ports: number[], graceMs = 2000): Promise<void> {
  const deadline = Date.now() + graceMs;
  for (const port of ports) {
    while (await portOpen(port)) {
      if (Date.now() > deadline) throw new Error(`${what}: port ${port} on 127.0.0.1 is already in use`);
      await sleep(200);
    }
  }
}

export const seconds = (since: number): string => `${((Date.now() - since) / 1000).toFixed(1)}s`;
