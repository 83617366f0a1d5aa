/**
 * Preloaded into pushers started by the bench (`--import`): answers memory
 * probes over the IPC channel after a full GC, so heap per connection is
 * measured on live objects only. Never used outside benchmarks.
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { writeHeapSnapshot } from 'node:v8';

/** A CPU profile of the next `ms` only (e.g. an idle window), written to `file`. */
async function profileFor(ms: number, file: string): Promise<void> {
  const session = new Session();
  session.connect();
  const post = (method: string, params?: object) =>
    new Promise<unknown>((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
  try {
    await post('Profiler.enable');
    await post('Profiler.start');
    await new Promise((r) => setTimeout(r, ms));
    const { profile } = (await post('Profiler.stop')) as { profile: unknown };
    writeFileSync(file, JSON.stringify(profile));
  } finally {
    session.disconnect();
  }
}

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (m: { probe?: string; id?: number; file?: string; ms?: number }) => {
  if (m?.probe === 'heap-snapshot' && m.file) {
    gc?.();
    process.send?.({ probe: 'heap-snapshot', id: m.id, file: writeHeapSnapshot(m.file) });
    return;
  }
  if (m?.probe === 'cpu-profile' && m.file) {
    void profileFor(m.ms ?? 10_000, m.file).then(
      () => process.send?.({ probe: 'cpu-profile', id: m.id, file: m.file }),
      (err: Error) => process.send?.({ probe: 'cpu-profile', id: m.id, error: err.message }),
    );
    return;
  }
  if (m?.probe !== 'memory') return;
  gc?.();
  gc?.();
  const u = process.memoryUsage();
  process.send?.({
    probe: 'memory',
    id: m.id,
    rss: u.rss,
    heapUsed: u.heapUsed,
    heapTotal: u.heapTotal,
    external: u.external,
    arrayBuffers: u.arrayBuffers,
    gc: Boolean(gc),
  });
});
// The channel must not keep a pusher alive after its own shutdown.
process.channel?.unref();
