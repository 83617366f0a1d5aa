/**
 * Preloaded into pushers started by the bench (`--import`): answers memory
 * probes over the IPC channel after a full GC, so heap per connection is
 * measured on live objects only. Never used outside benchmarks.
 */
import { writeHeapSnapshot } from 'node:v8';

const gc = (globalThis as { gc?: () => void }).gc;

process.on('message', (m: { probe?: string; id?: number; file?: string }) => {
  if (m?.probe === 'heap-snapshot' && m.file) {
    gc?.();
    process.send?.({ probe: 'heap-snapshot', id: m.id, file: writeHeapSnapshot(m.file) });
    return;
  }
  if (m?.probe !== 'memory') return;
  gc?.();
  gc?.();
  const u = process.memoryUsage();
  process.send?.({ probe: 'memory', id: m.id, rss: u.rss, heapUsed: u.heapUsed, heapTotal: u.heapTotal, external: u.external, arrayBuffers: u.arrayBuffers, gc: Boolean(gc) });
});
// The channel must not keep a pusher alive after its own shutdown.
process.channel?.unref();
