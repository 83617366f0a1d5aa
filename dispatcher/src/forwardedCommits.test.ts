import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createForwardedCommits } from './forwardedCommits.js';

test('one record per partition at a time, of the newest offset noted; failures are reported and passed by', async () => {
  const calls: string[] = [];
  const errors: string[] = [];
  let release: () => void = () => undefined;
  let failNext = false;
  const commits = createForwardedCommits({
    record: async (topic, partition, offset) => {
      calls.push(`${topic}:${partition}@${offset}`);
      if (offset === '1') await new Promise<void>((r) => (release = r));
      if (failNext) {
        failNext = false;
        throw new Error('commit refused');
      }
    },
    onError: (err) => errors.push(err.message),
  });
  commits.done('t', 0, '1');
  commits.done('t', 0, '2');
  commits.done('t', 0, '3');
  commits.done('t', 1, '7');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(calls, ['t:0@1', 't:1@7'], 'partition 0 waits for its record in flight; partition 1 does not');
  release();
  await commits.settle();
  assert.deepEqual(calls, ['t:0@1', 't:1@7', 't:0@3'], 'offsets noted meanwhile fold into the newest');
  failNext = true;
  commits.done('t', 0, '4');
  await commits.settle();
  commits.done('t', 0, '5');
  await commits.settle();
  assert.deepEqual(errors, ['commit refused']);
  assert.deepEqual(calls.slice(-2), ['t:0@4', 't:0@5']);
});
