import assert from 'node:assert/strict';
import { eventually, type EventuallyOptions } from './eventually.js';
import type { TestStack } from './stack.js';

/** Messages sent to users in turn while a test does something else, and the check that all of them arrived. */
export interface Sender {
  /** How many messages have been sent so far. */
  count(): number;
  /** Sends no more, and waits for the one in flight (a refused send fails here). */
  stop(): Promise<void>;
  /**
   * Waits (with `options`) until each user's `received` set has every message sent to it, then
   * asserts, user by user, that none is missing (so a time-out names what is).
   */
  assertReceived(received: Map<string, Set<string>>, options: EventuallyOptions<boolean>): Promise<void>;
}

/** Starts sending `users` one message at a time, in turn, payload `{ i }`, until stopped or `max` are sent; each must be accepted (202). */
export function startSending(s: TestStack, users: string[], max: number): Sender {
  const sent = new Map<string, string[]>(users.map((u) => [u, []]));
  let sending = true;
  const done = (async () => {
    for (let i = 0; sending && i < max; i++) {
      const u = users[i % users.length]!;
      const r = await s.send({ to: { users: [u] }, payload: { i } });
      assert.equal(r.status, 202);
      sent.get(u)!.push(r.body.id);
    }
  })();
  return {
    count: () => [...sent.values()].reduce((n, ids) => n + ids.length, 0),
    async stop() {
      sending = false;
      await done;
    },
    async assertReceived(received, options) {
      await eventually(() => users.every((u) => sent.get(u)!.every((id) => received.get(u)!.has(id))), options).catch(() => undefined);
      for (const u of users)
        assert.deepEqual(
          sent.get(u)!.filter((id) => !received.get(u)!.has(id)),
          [],
          `${u} missed messages`,
        );
    },
  };
}
