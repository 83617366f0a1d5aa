import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLOSE } from '../../protocol/codes.js';
import { afterClose, afterFailedOpen } from './closePolicy.js';

test('codes that forbid a reconnect stop the client, opened or not', () => {
  for (const code of [CLOSE.PROTOCOL_ERROR, CLOSE.KICKED]) {
    assert.deepEqual(afterClose(code, true), { kind: 'stop' });
    assert.deepEqual(afterClose(code, false), { kind: 'stop' });
  }
});

test('a socket that never opened asks the node about the token first', () => {
  assert.deepEqual(afterClose(1006, false), { kind: 'check-session' });
  assert.deepEqual(afterClose(CLOSE.TOKEN_EXPIRED, false), { kind: 'check-session' });
});

test('a dropped connection reconnects, renewing an expired token and leaving a node that goes away', () => {
  assert.deepEqual(afterClose(1006, true), { kind: 'reconnect', tokenExpired: false, nextNode: false });
  assert.deepEqual(afterClose(CLOSE.TOKEN_EXPIRED, true), { kind: 'reconnect', tokenExpired: true, nextNode: false });
  assert.deepEqual(afterClose(CLOSE.GOING_AWAY, true), { kind: 'reconnect', tokenExpired: false, nextNode: true });
  assert.deepEqual(afterClose(CLOSE.RATE_LIMITED, true), { kind: 'reconnect', tokenExpired: false, nextNode: false });
});

test("after a failed open the node's verdict decides: renew, stop, or try the next node", () => {
  assert.deepEqual(afterFailedOpen({ kind: 'expired' }, true), { kind: 'renew-token' });
  assert.deepEqual(afterFailedOpen({ kind: 'expired' }, false), {
    kind: 'refused',
    code: 'TOKEN_EXPIRED',
    message: 'token expired and no getToken option to renew it',
  });
  const refused = { kind: 'refused', code: 'ORIGIN_NOT_ALLOWED', message: 'no' } as const;
  assert.deepEqual(afterFailedOpen(refused, true), { kind: 'refused', code: 'ORIGIN_NOT_ALLOWED', message: 'no' });
  assert.deepEqual(afterFailedOpen({ kind: 'ok' }, true), { kind: 'next-node' });
  assert.deepEqual(afterFailedOpen({ kind: 'unknown' }, false), { kind: 'next-node' });
});
