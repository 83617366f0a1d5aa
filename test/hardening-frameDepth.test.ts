import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, startStack, type TestClient, type TestStack, wsOf } from './support/stack.js';
import { eventually } from './support/eventually.js';

/** The next frame of `type` the client receives after `from` frames (bounded). */
const nextFrame = (c: TestClient, from: number, type: string) =>
  eventually(() => c.frames.slice(from).find((f) => f.type === type), { timeoutMs: 5000, what: `a ${type} frame` });

describe('hardening #2: deeply nested frames are refused, not fatal', () => {
  let s: TestStack;
  before(async () => {
    s = await startStack();
  });
  after(async () => {
    await s?.stop();
  });

  test('30,000 nested brackets in type or in an upstream payload get BAD_FRAME and the node keeps serving', { timeout: 40_000 }, async () => {
    const pusher = s.pushers[0]!;
    const c = await connectClient(wsOf(pusher.url), (await s.token('nest', 'phone')).token);
    const deep = '['.repeat(30_000) + ']'.repeat(30_000); // 60 KB, under the 64 KB frame limit
    for (const frame of [
      `{"type":${deep}}`,
      `{"type":"upstream","payload":${deep}}`,
      `{"type":"upstream","payload":{"a":${'{"b":'.repeat(40)}1${'}'.repeat(40)}}}`,
    ]) {
      const from = c.frames.length;
      c.ws.send(frame);
      const err = await nextFrame(c, from, 'error');
      assert.equal(err.code, 'BAD_FRAME');
      assert.match(err.message, /deeper than 32 levels/);
    }
    // Brackets inside strings are not nesting: a payload that merely contains them is published.
    const from = c.frames.length;
    c.ws.send(JSON.stringify({ type: 'upstream', payload: { text: '['.repeat(1000) } }));
    c.ws.send('{"type":"ping"}');
    await nextFrame(c, from, 'pong');
    assert.ok(!c.frames.slice(from).some((f) => f.type === 'error'), JSON.stringify(c.frames.slice(from)));

    // Alive: same socket and same process, and a message still goes end to end.
    assert.equal(pusher.proc.exitCode, null, pusher.output());
    const r = await s.send({ to: { users: ['nest'] }, payload: { still: 'here' } });
    await c.waitFor(1);
    assert.equal(c.messages[0]!.id, r.body.id);
    assert.doesNotMatch(pusher.output(), /RangeError|Maximum call stack/);
    await c.close();
  });
});
