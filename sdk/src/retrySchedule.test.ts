import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffCap } from '../../protocol/backoff.js';
import { CLOSE } from '../../protocol/codes.js';
import { RetrySchedule } from './retrySchedule.js';

const CONFIG = { minMs: 100, maxMs: 10_000 };

test('each delay counts an attempt, within the growing window, until reset', () => {
  const retry = new RetrySchedule(CONFIG);
  for (let n = 0; n < 5; n++) {
    assert.equal(retry.attempt, n);
    const d = retry.nextDelay(1006);
    assert.ok(d >= 0 && d <= backoffCap(CONFIG, n), `delay ${d} for attempt ${n}`);
  }
  retry.reset();
  assert.equal(retry.attempt, 0);
});

test('4029 adds a pause on top of the backoff delay', () => {
  const retry = new RetrySchedule(CONFIG);
  const d = retry.nextDelay(CLOSE.RATE_LIMITED);
  assert.ok(d >= backoffCap(CONFIG, 4) && d <= backoffCap(CONFIG, 4) + backoffCap(CONFIG, 0), `delay ${d}`);
});

test('one attempt scheduled at a time; cancel drops it', async () => {
  const retry = new RetrySchedule(CONFIG);
  const ran: string[] = [];
  retry.schedule(5, () => ran.push('first'));
  retry.schedule(5, () => ran.push('second'));
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(ran, ['second']);
  retry.schedule(5, () => ran.push('third'));
  retry.cancel();
  await new Promise((r) => setTimeout(r, 30));
  assert.deepEqual(ran, ['second']);
});
