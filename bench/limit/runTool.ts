/** The external tools the limit measurements drive (Kafka's perf tools, redis-benchmark). */
import path from 'node:path';
import { spawnGroup, stopGroup } from '../lib/procs.js';

/** Runs a command in its own process group, bounded in time; resolves with stdout, rejects with the tail of its output. */
export function runTool(cmd: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawnGroup(cmd, args);
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr!.on('data', (d: Buffer) => (err = (err + d.toString()).slice(-4000)));
    const timer = setTimeout(() => void stopGroup(child, 'SIGKILL', 0), timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else
        reject(
          new Error(
            `${path.basename(cmd)} ${args.slice(0, 2).join(' ')} failed (${code ?? signal}${signal === 'SIGKILL' ? `, over ${timeoutMs} ms` : ''}): ${(err || out).trim().split('\n').slice(-3).join(' | ')}`,
          ),
        );
    });
  });
}
