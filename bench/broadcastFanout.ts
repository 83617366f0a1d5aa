/**
 * Broadcast fan-out: N connected clients over P pushers, one transient
 * broadcast submitted over HTTP; reports the time until 50%, 99% and 100% of
 * the clients have it (submit to receipt). Starts its own isolated stack.
 *
 *   npm run bench -- broadcast [--clients 2000] [--pushers 2]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { infraUp } from '../infra/stack.js';
import { connectClient, startStack, wsOf, type TestClient } from '../test/support/stack.js';
import { ROOT } from '../test/support/services.js';

const { values } = parseArgs({ args: process.argv.slice(2), options: { clients: { type: 'string', default: '2000' }, pushers: { type: 'string', default: '2' } } });
const n = Number(values.clients);
const pushers = Number(values.pushers);

await infraUp({ log: (l) => console.log(l) });
const s = await startStack({ pushers, dispatchers: 1, env: { LOG_LEVEL: 'warn' } });
try {
  const clients: TestClient[] = [];
  const t0 = performance.now();
  let next = 0;
  await Promise.all(
    Array.from({ length: 100 }, async () => {
      while (next < n) {
        const i = next++;
        clients.push(await connectClient(wsOf(s.pushers[i % pushers]!.url), (await s.token(`b${i}`, 'd')).token));
      }
    }),
  );
  const connectSeconds = (performance.now() - t0) / 1000;
  const arrivals: number[] = [];
  const sentAt = performance.now();
  for (const c of clients) c.ws.on('message', (d) => d.toString().includes('"type":"message"') && arrivals.push(performance.now() - sentAt));
  const r = await s.send({ to: { all: true }, payload: { text: 'fan-out' }, persistent: false });
  if (r.status !== 202) throw new Error(`submit failed: ${r.status}`);
  const deadline = Date.now() + 60_000;
  while (arrivals.length < n && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
  const sorted = arrivals.sort((a, b) => a - b);
  const at = (p: number) => sorted[Math.min(sorted.length - 1, Math.ceil(p * n) - 1)] ?? NaN;
  const result = {
    scenario: 'broadcast',
    options: { clients: n, pushers },
    machine: { cores: os.cpus().length, memoryGiB: Math.round(os.totalmem() / 2 ** 30), kernel: os.release(), node: process.version },
    commit: execSync('git rev-parse --short HEAD', { cwd: ROOT }).toString().trim(),
    at: new Date().toISOString(),
    connectSeconds,
    received: arrivals.length,
    msToPercent: { p50: at(0.5), p99: at(0.99), p100: sorted.length === n ? sorted.at(-1)! : NaN },
    deliveriesPerSecond: sorted.length === n ? n / (sorted.at(-1)! / 1000) : NaN,
  };
  const dir = path.join(ROOT, 'bench', 'results');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, `broadcast-${result.at.replace(/[:.]/g, '-')}.json`);
  writeFileSync(file, JSON.stringify(result, null, 2));
  console.log(
    `\nbroadcast to ${n} clients over ${pushers} pushers (connected in ${connectSeconds.toFixed(1)} s): ` +
      `50% ${result.msToPercent.p50.toFixed(0)} ms, 99% ${result.msToPercent.p99.toFixed(0)} ms, 100% ${result.msToPercent.p100.toFixed(0)} ms ` +
      `(${result.received}/${n} received, ${result.deliveriesPerSecond.toFixed(0)} deliveries/s)\n  wrote ${path.relative(ROOT, file)}`,
  );
  await Promise.all(clients.map((c) => c.close()));
} finally {
  await s.stop();
}
process.exit(0);
