/** Small helpers shared by our scenarios: options, waiting, the submitter process, formatting. */
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ScenarioOptions, TargetCheck } from './types.js';
import { WorkerProcess } from './workerProcess.js';
import type { SubmitResult, SubmitSpec } from './submitWorker.js';

const SUBMIT_WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'submitWorker.ts');

/** A numeric option: `--name` from the command line, else the quick or full default. */
export function num(o: ScenarioOptions, name: string, quick: number, full: number): number {
  const v = o.args[name];
  if (v === undefined || v === true) return o.quick ? quick : full;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${String(v)}`);
  return n;
}

/** A list option (`--rates 1000,2000`). */
export function list(o: ScenarioOptions, name: string, quick: number[], full: number[]): number[] {
  const v = o.args[name];
  if (v === undefined || v === true) return o.quick ? quick : full;
  const out = String(v).split(',').map(Number);
  if (out.some((n) => !Number.isFinite(n) || n <= 0)) throw new Error(`--${name} must be a comma-separated list of positive numbers`);
  return out;
}

/** Polls `fn` every `intervalMs` until it returns true or `timeoutMs` passes; returns whether it did. */
export async function waitUntil(fn: () => Promise<boolean> | boolean, timeoutMs: number, intervalMs = 100): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await fn()) return true;
    if (Date.now() >= deadline) return false;
    await sleep(intervalMs);
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The submitter in its own process. */
export function startSubmitter() {
  const w = new WorkerProcess(SUBMIT_WORKER);
  return {
    pid: w.pid,
    run: (spec: SubmitSpec) => w.call<SubmitResult>({ cmd: 'run', spec: spec as unknown as Record<string, unknown> }),
    close: async () => {
      await w.call({ cmd: 'close' }).catch(() => undefined);
      await w.close();
    },
  };
}

export const kb = (bytes: number) => Math.round(bytes / 102.4) / 10;
export const mib = (bytes: number) => Math.round(bytes / 104857.6) / 10;
export const round = (v: number, digits = 1) => Math.round(v * 10 ** digits) / 10 ** digits;
/** The machine's load average (1/5/15 min), to 2 decimals. */
export const loadAverage = () => os.loadavg().map((x) => round(x, 2));
/** The element at the median of `by`; of an even count, the upper of the middle two. */
export const medianBy = <T>(xs: T[], by: (x: T) => number): T | undefined => [...xs].sort((a, b) => by(a) - by(b))[Math.floor(xs.length / 2)];
/** The median (NaN of none); of an even count, the upper of the middle two. */
export const median = (xs: number[]): number => medianBy(xs, (x) => x) ?? NaN;

export function target(name: string, goal: string, measured: string, met: boolean): TargetCheck {
  return { name, target: goal, measured, met };
}

/** Sums a Prometheus counter or gauge over its label sets from /metrics text. */
export function metricSum(text: string, name: string, labelFilter?: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    if (labelFilter && !rest.includes(labelFilter)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1)) || 0;
  }
  return sum;
}

/**
 * Waits until `expected` distinct deliveries were recorded, or nothing new
 * arrived for `quietMs`, or `maxMs` passed; returns the count seen.
 */
export async function settle(peek: () => Promise<{ unique: number }>, expected: number, { quietMs = 5000, maxMs = 60_000 } = {}): Promise<number> {
  const deadline = Date.now() + maxMs;
  let last = -1;
  let changedAt = Date.now();
  for (;;) {
    const { unique } = await peek();
    if (unique >= expected) return unique;
    if (unique !== last) {
      last = unique;
      changedAt = Date.now();
    }
    if (Date.now() - changedAt >= quietMs || Date.now() >= deadline) return unique;
    await sleep(100);
  }
}

/** `--profile`: every service of the stack writes a V8 CPU profile into `<outDir>/profiles/` when it exits. */
export function profileEnv(o: ScenarioOptions): Record<string, string> {
  // Node refuses --cpu-prof in NODE_OPTIONS; the preload starts the profiler itself.
  const preload = new URL('./cpuProfilePreload.mjs', import.meta.url).href;
  return o.args.profile ? { NODE_OPTIONS: `--import ${preload}`, PUSH_CPU_PROFILE_DIR: path.join(o.outDir, 'profiles') } : {};
}

/** `--mongo-url <url>`: the stack stores into this MongoDB-compatible server instead of the shared one. */
export function storeEnv(o: ScenarioOptions): Record<string, string> {
  const v = o.args['mongo-url'];
  return typeof v === 'string' ? { MONGO_URL: v } : {};
}

/** `--pusher-env K=V,K2=V2`: extra environment for the pushers (experiments). */
export function pusherEnvArg(o: ScenarioOptions): Record<string, string> {
  const v = o.args['pusher-env'];
  if (typeof v !== 'string') return {};
  return Object.fromEntries(v.split(',').map((kv) => kv.split('=') as [string, string]));
}

/**
 * Waits until the processes use less than `percent` of a core each over one
 * second (the work a burst left behind is done), or `timeoutMs` passes.
 */
export async function quiesce(pids: number[], { percent = 5, timeoutMs = 60_000 } = {}): Promise<boolean> {
  const { cpuPercent } = await import('./procStats.js');
  return waitUntil(async () => (await cpuPercent(pids, 1000)).every((p) => p < percent), timeoutMs, 0);
}
