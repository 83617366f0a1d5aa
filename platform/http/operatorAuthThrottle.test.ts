import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createOperatorAuthThrottle } from './operatorAuthThrottle.js';

test('operator auth throttle: blocked after maxFailures within the window, per address, until the window ends', () => {
  const t = createOperatorAuthThrottle({ maxFailures: 3, windowMs: 10_000 });
  const t0 = 1_000_000;
  for (let i = 0; i < 3; i++) {
    assert.equal(t.blockedFor('a', t0 + i), 0);
    t.failed('a', t0 + i);
  }
  assert.equal(t.blockedFor('a', t0 + 10), 9_990);
  assert.equal(t.blockedFor('b', t0 + 10), 0, 'another address is not affected');
  t.succeeded('b');
  assert.equal(t.blockedFor('a', t0 + 10_000), 0, 'allowed again once the window ended');
  // Failures under the limit are forgotten after a success.
  t.failed('c', t0);
  t.failed('c', t0);
  t.succeeded('c');
  t.failed('c', t0 + 1);
  assert.equal(t.blockedFor('c', t0 + 2), 0);
});
