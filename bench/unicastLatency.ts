/**
 * End-to-end unicast latency through the whole pipeline: HTTP submit on the
 * collector -> Kafka -> dispatcher -> Kafka -> pusher -> WebSocket receipt,
 * one message at a time. Starts its own isolated stack on the local infra.
 *
 *   npm run bench -- unicast-latency [--count 1000] [--transient]
 *
 * Prints a summary and writes bench/results/unicast-latency-<time>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { infraUp } from '../infra/stack.js';
import { connectClient, startStack } from '../test/support/stack.js';
import { ROOT } from '../test/support/services.js';

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: { count: { type: 'string', default: '1000' }, transient: { type: 'boolean', default: false }, warmup: { type: 'string', default: '50' } },
});
const count = Number(values.count);
const warmup = Number(values.warmup);
const persistent = !values.transient;

const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;

await infraUp({ log: (l) => console.log(l) });
const s = await startStack({ pushers: 1, dispatchers: 1, env: { LOG_LEVEL: 'warn' } });
try {
  const { token } = await s.token('bench-user', 'bench-device');
  const client = await connectClient(s.pushers[0]!.url.replace('http', 'ws') + '/v1/ws', token);
  const latencies: number[] = [];
  for (let i = 0; i < warmup + count; i++) {
    const t0 = performance.now();
    const r = await s.send({ to: { users: ['bench-user'] }, payload: { i }, persistent });
    if (r.status !== 202) throw new Error(`submit failed: ${r.status} ${JSON.stringify(r.body)}`);
    await client.waitFor(i + 1, 10_000);
    const ms = performance.now() - t0;
    if (persistent) client.ack([r.body.id]);
    if (i >= warmup) latencies.push(ms);
  }
  await client.close();
  const sorted = [...latencies].sort((a, b) => a - b);
  const result = {
    scenario: 'unicast-latency',
    options: { count, warmup, persistent, pushers: 1, dispatchers: 1 },
    machine: { cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version },
    commit: execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim(),
    at: new Date().toISOString(),
    latencyMs: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.at(-1)!,
      mean: latencies.reduce((a, b) => a + b, 0) / latencies.length,
    },
  };
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `unicast-latency-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2));
  const f = (n: number) => n.toFixed(2);
  console.log(
    `\nunicast ${persistent ? 'persistent' : 'transient'}, ${count} sequential messages (submit -> receipt):\n` +
      `  p50 ${f(result.latencyMs.p50)} ms  p90 ${f(result.latencyMs.p90)} ms  p99 ${f(result.latencyMs.p99)} ms  max ${f(result.latencyMs.max)} ms\n  wrote ${path.relative(ROOT, file)}`,
  );
} finally {
  await s.stop();
}
process.exit(0);
