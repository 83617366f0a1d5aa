import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from './eventually.js';

test('returns the first truthy value, or the first value `until` accepts', async () => {
  let n = 0;
  assert.equal(await eventually(() => (++n >= 3 ? n : 0), { intervalMs: 1 }), 3);
  let m = 0;
  const r = await eventually(async () => ({ state: ++m >= 2 ? 'done' : 'running' }), { until: (v) => v.state === 'done', intervalMs: 1 });
  assert.deepEqual(r, { state: 'done' });
});

test('attempts that throw are retried', async () => {
  let n = 0;
  assert.equal(
    await eventually(
      () => {
        if (++n < 3) throw new Error('not yet');
        return 'ok';
      },
      { intervalMs: 1 },
    ),
    'ok',
  );
});

test('fails after timeoutMs with what, the last value and the last error', async () => {
  await assert.rejects(
    eventually(() => ({ state: 'running' }), { what: 'the replay', timeoutMs: 50, intervalMs: 5, until: (v) => v.state === 'done' }),
    /timed out after 50 ms waiting for the replay \(last value: \{"state":"running"\}\)/,
  );
  await assert.rejects(
    eventually(
      () => {
        throw new Error('refused');
      },
      { timeoutMs: 30, intervalMs: 5 },
    ),
    /timed out after 30 ms waiting for .*refused.* \(last error: refused\)/,
  );
});

test('an attempt that hangs does not stretch the wait', async () => {
  const started = Date.now();
  await assert.rejects(
    eventually(() => new Promise<boolean>(() => {}), { what: 'a hanging check', timeoutMs: 100 }),
    /waiting for a hanging check/,
  );
  assert.ok(Date.now() - started < 1000, `${Date.now() - started} ms`);
});
