import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Redis } from 'ioredis';
import { createTraceWriter, traceIdFromHeaders, traceKey } from './traceRecords.js';
import { stack, uniqueId } from '../test/support/env.js';

test('trace id from traceparent, then X-Trace-Id; invalid values are ignored', () => {
  assert.equal(traceIdFromHeaders({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' }), '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(
    traceIdFromHeaders({ traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', 'x-trace-id': 'other' }),
    '4bf92f3577b34da6a3ce929d0e0e4736',
  );
  assert.equal(
    traceIdFromHeaders({ traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01', 'x-trace-id': 'req-7' }),
    'req-7',
    'an all-zero trace id is invalid',
  );
  assert.equal(traceIdFromHeaders({ traceparent: 'garbage', 'x-trace-id': 'req-8' }), 'req-8');
  assert.equal(traceIdFromHeaders({ 'x-trace-id': 'has space' }), undefined);
  assert.equal(traceIdFromHeaders({ 'x-trace-id': 'x'.repeat(257) }), undefined);
  assert.equal(traceIdFromHeaders({}), undefined);
});

test('the trace writer applies a flush per record: first-fact fields, later fields, summed counts and the lifetime', { timeout: 15_000 }, async () => {
  const prefix = `${uniqueId('trace')}:`;
  const redis = new Redis(stack.redisUrl, { keyPrefix: prefix, lazyConnect: true });
  await redis.connect();
  try {
    const dispatcher = createTraceWriter({ redis, ttlSeconds: 60, flushMs: 60_000 });
    const pusher = createTraceWriter({ redis, ttlSeconds: 30, keepExpiry: true, flushMs: 60_000 });
    pusher.set('m1', 'w:n1|alice|laptop', '{"at":1,"path":"live"}');
    await pusher.flush();
    assert.ok((await redis.ttl(traceKey('m1'))) > 20, 'a pusher writing first gives the record a lifetime');
    dispatcher.set('m1', 'meta', '{"app":"a"}');
    dispatcher.setIfAbsent('m1', 'r:alice', 'first');
    dispatcher.setIfAbsent('m1', 'r:alice', 'second');
    dispatcher.incr('m1', 'n:forwarded', 1);
    dispatcher.incr('m1', 'n:forwarded', 2);
    dispatcher.incr('m2', 'n:offline', 1);
    for (let i = 0; i < 250; i++) dispatcher.set(`bulk${i}`, 'meta', String(i));
    await dispatcher.flush();
    pusher.set('m1', 'a:alice|laptop', '5');
    await pusher.flush();
    const m1 = await redis.hgetall(traceKey('m1'));
    assert.deepEqual(m1, { 'w:n1|alice|laptop': '{"at":1,"path":"live"}', meta: '{"app":"a"}', 'r:alice': 'first', 'n:forwarded': '3', 'a:alice|laptop': '5' });
    assert.ok((await redis.ttl(traceKey('m1'))) > 50, 'the dispatcher sets the lifetime outright; the pusher leaves it');
    assert.equal(await redis.hget(traceKey('m2'), 'n:offline'), '1');
    assert.equal(await redis.hget(traceKey('bulk249'), 'meta'), '249', 'records beyond one script call are written too');
    await dispatcher.close();
    await pusher.close();
    dispatcher.set('m3', 'meta', 'after close');
    await dispatcher.flush();
    assert.equal(await redis.exists(traceKey('m3')), 0, 'nothing is written after close');
  } finally {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length > 0) await redis.del(...keys.map((k) => k.slice(prefix.length)));
    redis.disconnect();
  }
});
