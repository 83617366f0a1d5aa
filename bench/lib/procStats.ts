/** Process figures read from /proc (Linux): resident memory and CPU time. */
import { readFileSync } from 'node:fs';
import { cpuSeconds, rssBytes } from './procs.js';

export { cpuSeconds, rssBytes };

/** CPU use of each process over `ms`, in percent of one core. */
export async function cpuPercent(pids: number[], ms: number): Promise<number[]> {
  const before = pids.map(cpuSeconds);
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const secs = (performance.now() - t0) / 1000;
  return pids.map((pid, i) => Math.round(((cpuSeconds(pid) - before[i]!) / secs) * 1000) / 10);
}

/** Machine-wide CPU busy percent (all cores) over an interval, from /proc/stat. */
export function machineCpuSampler(): () => number {
  const read = () => {
    const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const idle = f[3]! + (f[4] ?? 0);
    return { idle, total: f.reduce((a, b) => a + b, 0) };
  };
  let last = read();
  return () => {
    const now = read();
    const busy = 1 - (now.idle - last.idle) / Math.max(1, now.total - last.total);
    last = now;
    return Math.round(busy * 1000) / 10;
  };
}
