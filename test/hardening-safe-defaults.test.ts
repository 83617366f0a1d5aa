import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { loadConfig as authConfig } from '../auth/src/config.js';
import { loadConfig as collectorConfig } from '../collector/src/config.js';
import { loadConfig as dispatcherConfig } from '../dispatcher/src/config.js';
import { loadConfig as adminConfig } from '../admin/src/config.js';
import { loadConfig as pusherConfig } from '../pusher/src/config.js';
import { ROOT, spawnService, startService, type ServiceName } from './support/services.js';
import { uniqueId } from './support/env.js';

/** Issue 12 #8: a service started with nothing set is in production mode, and development mode stays on loopback. */

const SERVICES: ServiceName[] = ['auth', 'collector', 'dispatcher', 'admin', 'pusher'];

/** Runs a service to its exit (a refused configuration exits at once) and returns the code and stderr. */
async function runToExit(name: ServiceName, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const proc = spawnService(name, env);
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => proc.once('exit', resolve));
  clearTimeout(timer);
  return { code, stderr };
}

describe('safe defaults', () => {
  test('every service started with no PUSH_MODE and no OPERATOR_KEY refuses to start (exit 2) and names OPERATOR_KEY', { timeout: 60_000 }, async () => {
    // '' is "not set" for the services' config readers; it also overrides the harness's development default.
    const results = await Promise.all(SERVICES.map((name) => runToExit(name, { PUSH_MODE: '', OPERATOR_KEY: '' })));
    for (const [i, { code, stderr }] of results.entries()) {
      assert.equal(code, 2, `${SERVICES[i]}: ${stderr}`);
      assert.match(stderr, new RegExp(`${SERVICES[i]}: invalid configuration: OPERATOR_KEY: required in production mode`));
    }
  });

  test('the development operator key is refused when the mode is not set', { timeout: 30_000 }, async () => {
    const { code, stderr } = await runToExit('dispatcher', { PUSH_MODE: '', OPERATOR_KEY: 'operator-key' });
    assert.equal(code, 2);
    assert.match(stderr, /OPERATOR_KEY: the development key "operator-key" is refused in production mode/);
  });

  test('development mode refuses a non-loopback BIND_HOST unless ALLOW_DEV_PUBLIC_BIND=true', { timeout: 60_000 }, async () => {
    for (const host of ['0.0.0.0', '::', '192.0.2.10']) {
      const { code, stderr } = await runToExit('auth', { PUSH_MODE: 'development', BIND_HOST: host });
      assert.equal(code, 2, stderr);
      assert.match(stderr, new RegExp(`BIND_HOST: "${host.replace(/\./g, '\\.')}" is not a loopback address.*ALLOW_DEV_PUBLIC_BIND=true`));
    }
    // The pusher's admin listener (operator drain) follows the same rule.
    const admin = await runToExit('pusher', { PUSH_MODE: 'development', PUSHER_ADMIN_HOST: '0.0.0.0' });
    assert.equal(admin.code, 2, admin.stderr);
    assert.match(admin.stderr, /PUSHER_ADMIN_HOST: "0\.0\.0\.0" is not a loopback address/);
    // Said explicitly, it listens on every interface (reached here through loopback).
    const id = uniqueId('bind').replace(/[^A-Za-z0-9]/g, '');
    const auth = await startService(
      'auth',
      { PUSH_MODE: 'development', BIND_HOST: '0.0.0.0', ALLOW_DEV_PUBLIC_BIND: 'true', MONGO_DB: id, REDIS_KEY_PREFIX: `${id}:` },
      { waitReady: false },
    );
    try {
      assert.equal((await fetch(`${auth.url}/healthz`)).status, 200);
    } finally {
      assert.equal(await auth.stop(), 0, auth.output());
    }
    // Production mode (real keys) may bind anywhere without being told.
    const { code } = await runToExit('auth', { PUSH_MODE: 'production', OPERATOR_KEY: 'a-secret', BIND_HOST: '0.0.0.0', AUTH_PORT: 'bad' });
    assert.equal(code, 2, 'fails on AUTH_PORT, not on BIND_HOST');
  });

  test('with no PUSH_MODE (production) there is no demo app: demo-key gets 401, and the operator key works', { timeout: 60_000 }, async () => {
    const id = uniqueId('prod').replace(/[^A-Za-z0-9]/g, '');
    const auth = await startService('auth', { PUSH_MODE: '', OPERATOR_KEY: `op-${id}`, DEMO_API_KEY: '', MONGO_DB: id, REDIS_KEY_PREFIX: `${id}:` });
    try {
      const token = await fetch(`${auth.url}/v1/tokens`, {
        method: 'POST',
        headers: { authorization: 'Bearer demo-key', 'content-type': 'application/json' },
        body: JSON.stringify({ userId: 'alice', deviceId: 'laptop' }),
      });
      assert.equal(token.status, 401);
      assert.equal(((await token.json()) as { error: { code: string } }).error.code, 'UNAUTHORIZED');
      const rotateWithDevKey = await fetch(`${auth.url}/v1/admin/keys/rotate`, { method: 'POST', headers: { authorization: 'Bearer operator-key' } });
      assert.equal(rotateWithDevKey.status, 401);
      const rotate = await fetch(`${auth.url}/v1/admin/keys/rotate`, { method: 'POST', headers: { authorization: `Bearer op-${id}` } });
      assert.equal(rotate.status, 200, await rotate.text());
      assert.doesNotMatch(auth.output(), /demo app ready/);
    } finally {
      await auth.stop();
    }
  });

  test('the image is production by default; compose says development for local use, explicitly, and its settings load', () => {
    const dockerfile = readFileSync(path.join(ROOT, 'Dockerfile'), 'utf8');
    assert.match(dockerfile, /^ENV PUSH_MODE=production$/m);
    assert.doesNotMatch(dockerfile, /OPERATOR_KEY=|DEMO_API_KEY=/, 'no key baked into the image');
    const compose = parse(readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8'), { merge: true }) as {
      services: Record<string, { environment?: Record<string, string | number> }>;
    };
    const loaders = { auth: authConfig, collector: collectorConfig, dispatcher: dispatcherConfig, admin: adminConfig, pusher: pusherConfig };
    for (const [name, load] of Object.entries(loaders)) {
      const env = Object.fromEntries(Object.entries(compose.services[name]!.environment ?? {}).map(([k, v]) => [k, String(v)]));
      assert.equal(env.PUSH_MODE, 'development', `${name}: mode set explicitly`);
      assert.equal(env.ALLOW_DEV_PUBLIC_BIND, 'true', `${name}: the public bind is asked for explicitly`);
      assert.ok(env.OPERATOR_KEY, `${name}: operator key set explicitly`);
      const config = load(env);
      assert.equal(config.mode, 'development');
      assert.equal(config.host, '0.0.0.0');
      // Without the explicit permission the same settings are refused.
      assert.throws(() => load({ ...env, ALLOW_DEV_PUBLIC_BIND: '' }), /BIND_HOST/);
    }
  });
});
