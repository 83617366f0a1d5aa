import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Connection } from './connection.js';
import { createTokenClock } from './tokenClock.js';

const T0 = 1_750_000_000_000; // a whole second

describe('token clock', () => {
  beforeEach(() => mock.timers.enable({ apis: ['setInterval', 'Date'], now: T0 }));
  afterEach(() => mock.timers.reset());

  const conn = (expiresInMs: number) =>
    ({ tokenExpiresAt: T0 + expiresInMs, tokenWarned: false, clockSlot: undefined, closed: false }) as unknown as Connection;

  function clock(warningMs: number) {
    const events: string[] = [];
    const c = createTokenClock({
      warningMs,
      onWarn: (x) => events.push(`warn ${(x as unknown as { tag: string }).tag} @${Date.now() - T0}`),
      onExpire: (x) => events.push(`expire ${(x as unknown as { tag: string }).tag} @${Date.now() - T0}`),
    });
    return { c, events };
  }

  test('warns warningMs before exp, expires at exp (to the next second), once each', () => {
    const { c, events } = clock(3000);
    const a = Object.assign(conn(10_500), { tag: 'a' });
    c.track(a);
    assert.equal(c.size, 1);
    for (let i = 0; i < 15; i++) mock.timers.tick(1000);
    assert.deepEqual(events, ['warn a @8000', 'expire a @11000']);
    assert.equal(c.size, 0);
    c.close();
  });

  test('a token closer to exp than the warning is warned at once; a renewed one waits for its new exp', () => {
    const { c, events } = clock(30_000);
    const b = Object.assign(conn(5000), { tag: 'b' });
    c.track(b);
    assert.deepEqual(events, ['warn b @0']);
    mock.timers.tick(2000);
    b.tokenExpiresAt = T0 + 60_000; // an auth frame brought a fresh token
    c.track(b);
    for (let i = 0; i < 65; i++) mock.timers.tick(1000);
    assert.deepEqual(events, ['warn b @0', 'warn b @30000', 'expire b @60000']);
    c.close();
  });

  test('an untracked or closed connection is left alone', () => {
    const { c, events } = clock(1000);
    const gone = Object.assign(conn(3000), { tag: 'gone' });
    const closed = Object.assign(conn(3000), { tag: 'closed' });
    c.track(gone);
    c.track(closed);
    c.untrack(gone);
    closed.closed = true;
    for (let i = 0; i < 5; i++) mock.timers.tick(1000);
    assert.deepEqual(events, []);
    assert.equal(c.size, 0);
    c.close();
  });
});
