import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ingestRecord as rec } from '../../test/support/ingestRecords.js';
import { BROADCAST_INBOX } from '../../protocol/tokens.js';
import { deliveriesOf } from './deliveriesOf.js';

test('persistent unicast and broadcasts become deliveries; transient, group and expired records do not', () => {
  const out = deliveriesOf(
    [
      rec('m1', { collapseKey: 'k' }),
      rec('m2', { persistent: false }),
      rec('m3', { target: 'GROUP', user: null, group: 'g' }),
      rec('m4', { target: 'ALL', user: null, taskId: 'T1' }),
      rec('m5', { expiresAt: 500 }),
    ],
    1000,
  );
  assert.deepEqual(out, [
    { app: 'a', user: 'u1', m: 'm1', e: 10_000, k: 'k', p: '{}', c: 0 },
    { app: 'a', user: BROADCAST_INBOX, m: 'm4', e: 10_000, t: 'T1', p: '{}', c: 0 },
  ]);
});
