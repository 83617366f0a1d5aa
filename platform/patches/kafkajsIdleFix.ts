import { createRequire } from 'node:module';
import { versionGuard } from './versionGuard.js';

/**
 * KafkaJS 2.2.4 keeps every broker connection's request queue in a 1 ms
 * timer loop once it has had a reply, even with nothing queued: its check
 * for pending requests schedules itself again with a negative delay
 * (tulios/kafkajs#1556, fix proposed in #1667, not released). An idle
 * process wakes up thousands of times a second for nothing. The check is
 * only needed while requests wait (`push` schedules it again when one does),
 * so it is skipped when nothing waits. Importing this module applies it once
 * per process, and only to KafkaJS 2.2.4 (`KAFKAJS_IDLE_FIX`): another
 * version, or another layout, is left as it is, with a warning for the former.
 */
interface RequestQueue {
  pending: unknown[];
  scheduleCheckPendingRequests(this: RequestQueue): void;
}

const PATCHED = Symbol.for('push.kafkajsIdleFix');
export const KAFKAJS_IDLE_FIX = { patch: 'kafkajsIdleFix', pkg: 'kafkajs', versions: ['2.2.4'] } as const;

function apply(): boolean {
  if (!versionGuard(KAFKAJS_IDLE_FIX)) return false;
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
