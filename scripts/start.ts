/**
 * `npm start`: the whole stack on one machine. Brings up Kafka, Redis and the
 * MongoDB-compatible server (provisioning them on first run), then auth,
 * collector, dispatcher, the admin service (operator API and dashboard) and
 * PUSHERS pushers (default 2, on 8090, 8091, ...),
 * and, in development mode, the demo page (DEMO_PORT, default 8088); waits
 * until each is ready, prints the addresses and stays in the foreground.
 * Ctrl-C, or a service that fails to start or exits, stops the services, then
 * the infrastructure this run started (see stopStack.ts).
 *
 * Services default to production mode; `npm start` is the local development
 * experience, so it runs them with PUSH_MODE=development unless told otherwise.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { infraDown, infraUp, type UpResult } from '../infra/stack.js';
import { createStackStopper } from './stopStack.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env: NodeJS.ProcessEnv = { ...process.env, PUSH_MODE: process.env.PUSH_MODE?.trim() || 'development' };
const pusherCount = Number(env.PUSHERS ?? '2');
if (!Number.isInteger(pusherCount) || pusherCount < 1 || pusherCount > 16) {
  console.error(`PUSHERS: expected an integer from 1 to 16, got "${env.PUSHERS}"`);
  process.exit(2);
}
const port = (name: string, fallback: number) => Number(env[name] ?? fallback);
const basePusherPort = port('PUSHER_PORT', 8090);

interface Svc {
  name: string;
  script: string;
  url: string;
  env: Record<string, string>;
  proc?: ChildProcess;
}

const services: Svc[] = [
  { name: 'auth', script: 'auth', url: `http://127.0.0.1:${port('AUTH_PORT', 8081)}`, env: {} },
  { name: 'collector', script: 'collector', url: `http://127.0.0.1:${port('COLLECTOR_PORT', 8080)}`, env: {} },
  { name: 'dispatcher', script: 'dispatcher', url: `http://127.0.0.1:${port('DISPATCHER_METRICS_PORT', 8083)}`, env: {} },
  {
    name: 'admin',
    script: 'admin',
    url: `http://127.0.0.1:${env.ADMIN_PORT === undefined && env.DISPATCHER_PORT !== undefined ? port('DISPATCHER_PORT', 8082) : port('ADMIN_PORT', 8082)}`,
    // What its status API and dashboard check and sample.
    env: {
      AUTH_URL: env.AUTH_URL ?? `http://127.0.0.1:${port('AUTH_PORT', 8081)}`,
      COLLECTOR_URL: env.COLLECTOR_URL ?? `http://127.0.0.1:${port('COLLECTOR_PORT', 8080)}`,
      DISPATCHER_URLS: env.DISPATCHER_URLS ?? `http://127.0.0.1:${port('DISPATCHER_METRICS_PORT', 8083)}`,
    },
  },
  ...Array.from({ length: pusherCount }, (_, i) => ({
    name: `pusher-${i + 1}`,
    script: 'pusher',
    url: `http://127.0.0.1:${basePusherPort + i}`,
    env: { PUSHER_PORT: String(basePusherPort + i), NODE_ID: `node-${basePusherPort + i}` },
  })),
];
// The demo server acts with the demo app's API key for whoever reaches it: development only.
const demo: Svc | undefined =
  env.PUSH_MODE === 'development'
    ? { name: 'demo', script: 'demo', url: `http://127.0.0.1:${port('DEMO_PORT', 8088)}`, env: { AUTH_URL: services[0]!.url, COLLECTOR_URL: services[1]!.url } }
    : undefined;
if (demo) services.push(demo);
const pushers = services.filter((s) => s.script === 'pusher');

// What infraUp started, once it has settled: a stop that comes while it is still
// provisioning or starting servers waits for it, then stops what it started.
let infraStart: Promise<string[]> = Promise.resolve([]);

const stopper = createStackStopper({
  stopServices: () =>
    Promise.all(
      services.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (!s.proc || s.proc.exitCode !== null || s.proc.signalCode !== null) return resolve();
            s.proc.once('exit', () => resolve());
            s.proc.kill('SIGTERM');
            setTimeout(() => s.proc?.kill('SIGKILL'), 10_000).unref();
          }),
      ),
    ).then(() => undefined),
  startedInfra: () => infraStart,
  infraDown: async (only) => {
    await infraDown({ only, log: (l) => console.log(l) });
  },
  log: (line) => console.log(line),
  exit: (code) => process.exit(code),
});
process.on('SIGINT', () => void stopper.stop(0));
process.on('SIGTERM', () => void stopper.stop(0));

async function waitReady(s: Svc, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (stopper.stopping) throw new Error('stopping');
    if (s.proc?.exitCode !== null && s.proc?.exitCode !== undefined) throw new Error(`${s.name} exited with code ${s.proc.exitCode}`);
    try {
      if ((await fetch(`${s.url}/readyz`, { signal: AbortSignal.timeout(2000) })).ok) return;
    } catch {
      // not up yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${s.name} not ready within ${timeoutMs / 1000}s (see its log lines above)`);
}

function launch(s: Svc): void {
  // A stop that came while infraUp was still running must not be followed by new processes.
  if (stopper.stopping) return;
  s.proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, s.script, 'src/main.ts')], {
    cwd: ROOT,
    env: { ...env, ...s.env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  s.proc.once('exit', (code, signal) => {
    if (!stopper.stopping) {
      console.error(`[start] ${s.name} exited (${code ?? signal}); stopping the stack`);
      void stopper.stop(1);
    }
  });
}

try {
  const up = infraUp({ log: (l) => console.log(l) });
  // infraUp attaches what it did start to its error when another server failed.
  infraStart = up.then(
    (r) => r.started,
    (err: { started?: UpResult['started'] }) => err.started ?? [],
  );
  await up;
  // auth first: pushers fetch its keys; the others are independent.
  launch(services[0]!);
  await waitReady(services[0]!);
  for (const s of services.slice(1)) launch(s);
  await Promise.all(services.slice(1).map((s) => waitReady(s)));
} catch (err) {
  // After Ctrl-C the services' exits make the waits above fail: that is no error of its own.
  if (!stopper.stopping) console.error(`[start] ${(err as Error).message}`);
  await stopper.stop(stopper.stopping ? 0 : 1);
}
// Ctrl-C while the last service was getting ready: wait for the stop (it exits the process).
if (stopper.stopping) await stopper.stop(0);

const demoKey = env.DEMO_API_KEY ?? 'demo-key';
console.log(`
Push platform is up (Ctrl-C to stop)

  collector   ${services[1]!.url}   POST /v1/messages
  auth        ${services[0]!.url}   POST /v1/tokens
  admin       ${services[3]!.url}   operator API; dashboard at ${services[3]!.url}/dashboard
  dispatcher  ${services[2]!.url}   (health, metrics)
${pushers.map((s) => `  ${s.name.padEnd(10)}  ${s.url.replace('http', 'ws')}/v1/ws`).join('\n')}
  kafka       ${env.KAFKA_BROKERS ?? '127.0.0.1:9092'}
  redis       ${env.REDIS_URL ?? 'redis://127.0.0.1:6379'}
  mongodb     ${env.MONGO_URL ?? 'mongodb://127.0.0.1:27017'}
${demo ? `  demo page   ${demo.url}/   (browser SDK demo; development mode only)\n` : ''}
${env.PUSH_MODE === 'development' ? `  demo app: demo   API key: ${demoKey}   operator key: ${env.OPERATOR_KEY ?? 'operator-key'}` : "  production mode: no demo app; use your OPERATOR_KEY and your apps' API keys"}
  every service answers /healthz, /readyz and /metrics
  operator CLI: npx push status   (npx push --help)

Try it:
  curl -s -X POST ${services[0]!.url}/v1/tokens -H 'Authorization: Bearer ${demoKey}' \\
       -H 'Content-Type: application/json' -d '{"userId":"alice","deviceId":"laptop"}'
  curl -s -X POST ${services[1]!.url}/v1/messages -H 'Authorization: Bearer ${demoKey}' \\
       -H 'Content-Type: application/json' -d '{"to":{"users":["alice"]},"payload":{"text":"hi"}}'
`);
