import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { KAFKAJS_IDLE_FIX, kafkajsIdleFixApplied } from './kafkajsIdleFix.js';
import { installedVersion } from './versionGuard.js';

interface QueueLike {
  pending: unknown[];
  throttledUntil: number;
  throttleCheckTimeoutId: NodeJS.Timeout | null;
  checkPendingRequests(): void;
}

const proto = (
  createRequire(import.meta.url)('kafkajs/src/network/requestQueue/index.js') as { prototype: { scheduleCheckPendingRequests(this: QueueLike): void } }
).prototype;
const queue = (pending: unknown[]): QueueLike => ({ pending, throttledUntil: 0, throttleCheckTimeoutId: null, checkPendingRequests: () => {} });

test('the installed KafkaJS is the version the idle fix was written for, and the fix is applied', () => {
  assert.ok(KAFKAJS_IDLE_FIX.versions.includes(installedVersion('kafkajs') as '2.2.4'), `kafkajs ${installedVersion('kafkajs')}`);
  assert.equal(kafkajsIdleFixApplied, true);
});

test('an idle request queue schedules no check; a queue with waiting requests still does', () => {
  const idle = queue([]);
  proto.scheduleCheckPendingRequests.call(idle);
  assert.equal(idle.throttleCheckTimeoutId, null, 'no timer while nothing waits');

  const busy = queue([{}]);
  proto.scheduleCheckPendingRequests.call(busy);
  assert.ok(busy.throttleCheckTimeoutId, 'a timer once a request waits');
  clearTimeout(busy.throttleCheckTimeoutId!);
});
