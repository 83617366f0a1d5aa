/**
 * Every child process a scenario starts is registered here, so the runner can
 * kill what a timed-out or failed scenario left behind before the next one
 * starts (a leftover stack would skew every later figure).
 */
import type { ChildProcess } from 'node:child_process';

const live = new Set<ChildProcess>();

export function track(proc: ChildProcess): ChildProcess {
  live.add(proc);
  proc.once('exit', () => live.delete(proc));
  return proc;
}

/** SIGKILLs every tracked process still running; returns how many there were. */
export function killTracked(): number {
  let n = 0;
  for (const p of live) {
    if (p.exitCode === null && p.signalCode === null) {
      p.kill('SIGKILL');
      n++;
    }
  }
  live.clear();
  return n;
}
