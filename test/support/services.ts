import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export type ServiceName = 'auth' | 'collector' | 'dispatcher' | 'admin' | 'pusher';

const PORT_VAR: Record<ServiceName, string> = {
  auth: 'AUTH_PORT',
  collector: 'COLLECTOR_PORT',
  dispatcher: 'DISPATCHER_METRICS_PORT',
  admin: 'ADMIN_PORT',
  pusher: 'PUSHER_PORT',
};

/** A free loopback port (the OS picks it; a tiny race is acceptable in tests). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface RunningService {
  name: ServiceName;
  port: number;
  url: string;
  proc: ChildProcess;
  /** Everything the process wrote, for assertions and for failure messages. */
  output(): string;
  /** Sends a signal and resolves with the exit code (or the signal name). */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | string>;
}

/** Spawns a service as its own process, the way `npm start` does, and waits for /healthz. */
export async function startService(
  name: ServiceName,
  env: Record<string, string> = {},
  { waitReady = true, timeoutMs = 30_000 }: { waitReady?: boolean; timeoutMs?: number } = {},
): Promise<RunningService> {
  const port = env[PORT_VAR[name]] ? Number(env[PORT_VAR[name]]) : await freePort();
  const proc = spawnService(name, { LOG_LEVEL: 'warn', ...env, [PORT_VAR[name]]: String(port) });
  let out = '';
  proc.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | string>((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal ?? 'unknown')));
  const svc: RunningService = {
    name,
    port,
    url: `http://127.0.0.1:${port}`,
    proc,
    output: () => out,
    async stop(signal = 'SIGTERM', stopTimeoutMs = 10_000) {
      if (proc.exitCode !== null || proc.signalCode !== null) return exited;
      proc.kill(signal);
      const timer = setTimeout(() => proc.kill('SIGKILL'), stopTimeoutMs);
      try {
        return await exited;
      } finally {
        clearTimeout(timer);
      }
    },
  };
  const deadline = Date.now() + timeoutMs;
  const path = waitReady ? '/readyz' : '/healthz';
  while (Date.now() < deadline) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with ${proc.exitCode}:\n${out}`);
    try {
      const res = await fetch(svc.url + path, { signal: AbortSignal.timeout(2000) });
      if (res.ok) return svc;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await svc.stop('SIGKILL');
  throw new Error(`${name} did not become ${waitReady ? 'ready' : 'healthy'} within ${timeoutMs} ms:\n${out}`);
}

/**
 * Services default to production mode; tests run them in development mode (the
 * `operator-key` operator key, the demo app) unless `env` says otherwise: pass
 * `PUSH_MODE: ''` to see what an unconfigured service does.
 */
export function spawnService(name: ServiceName, env: Record<string, string>): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, name, 'src/main.ts')], {
    cwd: ROOT,
    env: { ...process.env, PUSH_MODE: 'development', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}
