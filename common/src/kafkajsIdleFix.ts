import { createRequire } from 'node:module';

/**
 * KafkaJS 2.2.4 keeps every broker connection's request queue in a 1 ms
 * timer loop once it has had a reply, even with nothing queued: its check
 * for pending requests schedules itself again with a negative delay
 * (tulios/kafkajs#1556, fix proposed in #1667, not released). An idle
 * process wakes up thousands of times a second for nothing. The check is
 * only needed while requests wait (`push` schedules it again when one does),
 * so it is skipped when nothing waits. Importing this module applies it once
 * per process; if KafkaJS changes its layout, nothing is patched.
 */
interface RequestQueue {
  pending: unknown[];
  scheduleCheckPendingRequests(this: RequestQueue): void;
}

const PATCHED = Symbol.for('push.kafkajsIdleFix');

function apply(): boolean {
  try {
    const require = createRequire(import.meta.url);
    const proto = (require('kafkajs/src/network/requestQueue/index.js') as { prototype: RequestQueue & { [PATCHED]?: boolean } }).prototype;
    const original = proto.scheduleCheckPendingRequests;
    if (typeof original !== 'function' || proto[PATCHED]) return Boolean(proto[PATCHED]);
    proto.scheduleCheckPendingRequests = function (this: RequestQueue) {
      if (this.pending.length === 0) return;
      original.call(this);
    };
    proto[PATCHED] = true;
    return true;
  } catch {
    return false;
  }
}

/** Whether the fix is in place in this process. */
export const kafkajsIdleFixApplied = apply();
