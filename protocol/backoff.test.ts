import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffCap, createBackoff, fullJitterDelay } from './backoff.js';

const config = { minMs: 100, maxMs: 5000 };

test('the cap doubles per attempt, then saturates at maxMs', () => {
  const caps = Array.from({ length: 10 }, (_, i) => backoffCap(config, i));
  assert.deepEqual(caps, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000]);
  assert.equal(backoffCap(config, 5000), 5000, 'no overflow for huge attempt counts');
});

test('full jitter: many samples stay within [0, cap] and spread over the whole window', () => {
  for (const attempt of [0, 3, 8]) {
    const cap = backoffCap(config, attempt);
    const samples = Array.from({ length: 5000 }, () => fullJitterDelay(config, attempt));
    assert.ok(
      samples.every((d) => Number.isInteger(d) && d >= 0 && d <= cap),
      `attempt ${attempt} out of [0, ${cap}]`,
    );
    assert.ok(Math.min(...samples) < cap * 0.05, 'some delays near 0');
    assert.ok(Math.max(...samples) > cap * 0.95, 'some delays near the cap');
  }
  assert.equal(
    fullJitterDelay(config, 2, () => 0),
    0,
  );
  assert.equal(
    fullJitterDelay(config, 2, () => 0.999999),
    400,
  );
});

test('a backoff counts attempts and starts over after reset', () => {
  const b = createBackoff(config, () => 0.999999);
  assert.deepEqual([b.next(), b.next(), b.next()], [100, 200, 400]);
  assert.equal(b.attempt, 3);
  b.reset();
  assert.equal(b.attempt, 0);
  assert.equal(b.next(), 100);
});
