import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { ROOT } from './support/services.js';
import { eventually } from './support/eventually.js';

/**
 * Issue 12 #3: the shared service runner's last resort. A throw contained at a
 * listener is logged and counted and the process goes on; an unhandled
 * rejection is logged and counted; an exception that escapes to the process is
 * logged with its stack and the process exits 70 on purpose, for its
 * supervisor to restart it.
 */

interface LogLine {
  level: string;
  msg: string;
  service?: string;
  listener?: string;
  origin?: string;
  exitCode?: number;
  err?: { message: string; stack: string; type: string };
  port?: number;
}

function startFixture() {
  const proc = spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'test/fixtures/guardedService.ts')], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  proc.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
  const lines = (): LogLine[] =>
    stdout
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as LogLine);
  return { proc, exited, lines, stdout: () => stdout, stderr: () => stderr };
}

const metric = async (url: string, name: string): Promise<number> => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(name));
  return line ? Number(line.split(' ').at(-1)) : 0;
};

describe('process guard of the service runner', () => {
  test(
    'contained listener errors and unhandled rejections are logged and counted, the process goes on; an escaping throw exits 70 with its stack logged',
    { timeout: 60_000 },
    async () => {
      const f = startFixture();
      try {
        const started = await eventually(() => f.lines().find((l) => l.msg === 'fixture listening'), {
          timeoutMs: 30_000,
          what: 'the fixture service to listen',
        });
        const url = `http://127.0.0.1:${started.port}`;

        // A listener that throws (synchronously, and asynchronously): contained, logged with its name, counted.
        assert.equal((await fetch(`${url}/trigger/listener`, { method: 'POST' })).status, 202);
        await eventually(async () => (await metric(url, 'push_listener_errors_total{listener="fixture-async"')) === 1, {
          what: 'the async listener error counted',
        });
        assert.equal(await metric(url, 'push_listener_errors_total{listener="fixture-message"'), 1);
        // The log lines are written apart from the counters: await them, don't assume they are in yet.
        const contained = await eventually(
          () => {
            const lines = f.lines().filter((l) => l.msg === 'listener failed; error contained');
            return lines.length >= 2 ? lines : undefined;
          },
          { what: 'both contained listener errors logged' },
        );
        assert.deepEqual(contained.map((l) => l.listener).sort(), ['fixture-async', 'fixture-message']);
        assert.match(contained.find((l) => l.listener === 'fixture-message')!.err!.stack, /SyntaxError/);
        assert.equal((await fetch(`${url}/healthz`)).status, 200, 'still serving');

        // A rejection nobody handles: logged with its stack and counted; still serving.
        assert.equal((await fetch(`${url}/trigger/rejection`, { method: 'POST' })).status, 202);
        await eventually(async () => (await metric(url, 'push_unhandled_rejections_total')) === 1, { what: 'the rejection counted' });
        const rejection = await eventually(() => f.lines().find((l) => l.msg === 'unhandled rejection'), { what: 'the rejection logged' });
        assert.equal(rejection.service, 'fixture');
        assert.equal(rejection.err?.message, 'nobody waits for this');
        assert.match(rejection.err!.stack, /guardedService\.ts/);
        assert.equal((await fetch(`${url}/healthz`)).status, 200, 'still serving');

        // An exception that reaches the process: logged (JSON and plain stderr), exit 70.
        assert.equal((await fetch(`${url}/trigger/throw`, { method: 'POST' })).status, 202);
        const code = await Promise.race([f.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
        assert.equal(code, 70, f.stdout() + f.stderr());
        const fatal = f.lines().find((l) => l.level === 'fatal')!;
        assert.ok(fatal, f.stdout());
        assert.equal(fatal.msg, 'uncaught exception; exiting for the supervisor to restart the process');
        assert.equal(fatal.service, 'fixture');
        assert.equal(fatal.origin, 'uncaughtException');
        assert.equal(fatal.exitCode, 70);
        assert.equal(fatal.err?.message, 'boom from a timer');
        assert.match(fatal.err!.stack, /Error: boom from a timer\n\s+at .*guardedService\.ts/);
        assert.match(f.stderr(), /fixture: uncaughtException, exiting 70: Error: boom from a timer/);
        assert.doesNotMatch(f.stdout(), /"msg":"stopped"/, 'no graceful shutdown on a crash');
      } finally {
        if (f.proc.exitCode === null) f.proc.kill('SIGKILL');
      }
    },
  );

  test('a Kafka consumer that KafkaJS stops for good makes the process exit 70, not linger deaf', { timeout: 60_000 }, async () => {
    const f = startFixture();
    try {
      const started = await eventually(() => f.lines().find((l) => l.msg === 'fixture listening'), {
        timeoutMs: 30_000,
        what: 'the fixture service to listen',
      });
      assert.equal((await fetch(`http://127.0.0.1:${started.port}/trigger/consumer-crash`, { method: 'POST' })).status, 202);
      const code = await Promise.race([f.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 30_000))]);
      assert.equal(code, 70, f.stdout() + f.stderr());
      const fatal = f.lines().find((l) => l.level === 'fatal')!;
      assert.equal(fatal.msg, 'consumer fixture stopped for good after an error KafkaJS does not retry; exiting for the supervisor to restart the process');
      assert.equal(fatal.exitCode, 70);
      assert.match(f.stderr(), /fixture: consumer fixture stopped for good .*exiting 70: .*handler failed on every record/s);
    } finally {
      if (f.proc.exitCode === null) f.proc.kill('SIGKILL');
    }
  });
});
