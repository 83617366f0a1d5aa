import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pino from 'pino';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { eventually } from '../../test/support/eventually.js';
import { exceedsDepth } from './frameDepth.js';
import { createHandshakeLimiter, sourceKey } from './handshakeLimiter.js';
import { createAckWriter } from './ackWriter.js';

describe('frame depth', () => {
  const deep = (n: number) => Buffer.from('['.repeat(n) + ']'.repeat(n));
  test('counts arrays and objects, the outermost being 1', () => {
    assert.equal(exceedsDepth(deep(32), 32), false);
    assert.equal(exceedsDepth(deep(33), 32), true);
    assert.equal(exceedsDepth(Buffer.from('{"a":{"b":[1,{"c":2}]}}'), 4), false);
    assert.equal(exceedsDepth(Buffer.from('{"a":{"b":[1,{"c":2}]}}'), 3), true);
  });
  test('ignores brackets inside strings, escaped quotes included, and multi-byte characters', () => {
    assert.equal(exceedsDepth(Buffer.from(JSON.stringify({ t: '[[[[{{{{' + '"\\[[['.repeat(100) })), 2), false);
    assert.equal(exceedsDepth(Buffer.from(JSON.stringify({ t: 'é€😀['.repeat(50) })), 1), false);
  });
});

describe('handshake limiter', () => {
  test('a token bucket per source: burst, then refused with a Retry-After, then refilled', () => {
    let now = 0;
    const l = createHandshakeLimiter({ rate: 2, burst: 3, exempt: [], now: () => now });
    assert.deepEqual(
      [1, 2, 3].map(() => l.take('203.0.113.7').ok),
      [true, true, true],
    );
    assert.deepEqual(l.take('203.0.113.7'), { ok: false, retryAfterSeconds: 1 });
    assert.equal(l.take('203.0.113.8').ok, true, 'another address has its own bucket');
    now += 500;
    assert.equal(l.take('203.0.113.7').ok, true, 'half a second refills one at 2/s');
    assert.equal(l.take('203.0.113.7').ok, false);
  });
  test('IPv6 counts by /64, mapped IPv4 as IPv4; exemptions', () => {
    assert.equal(sourceKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('2001:0db8:0001:0002:ffff:0:0:9'), '2001:db8:1:2::/64');
    assert.equal(sourceKey('::ffff:198.51.100.1'), '198.51.100.1');
    const l = createHandshakeLimiter({ rate: 1, burst: 1, exempt: ['loopback', '198.51.100.9'] });
    assert.equal(l.take('2001:db8:1:2::1').ok, true);
    assert.equal(l.take('2001:db8:1:2::2').ok, false, 'same /64');
    for (let i = 0; i < 5; i++) assert.equal(l.take(`127.0.0.${i + 1}`).ok && l.take('::1').ok && l.take('198.51.100.9').ok, true);
    assert.equal(createHandshakeLimiter({ rate: 0, burst: 1, exempt: [] }).take('203.0.113.1').ok, true, 'rate 0 turns it off');
  });
});

describe('ack writer', () => {
  test('one device gets at most its quota of the queue; other devices are not refused', async () => {
    const store = { ack: async () => undefined };
    const publisher = { publish: async () => undefined } as unknown as BatchPublisher;
    const w = createAckWriter({
      store,
      publisher,
      logger: pino({ level: 'silent' }),
      topic: 't',
      nodeId: 'n',
      flushMs: 60_000,
      maxPending: 10_000,
      maxPendingPerDevice: 1000,
    });
    const ids = (n: number) => Array.from({ length: n }, (_, i) => String(i).padStart(26, '0'));
    const two = (n: number): [string[], number[]] => [ids(n), ids(n).map(() => Date.now() + 60_000)];
    assert.equal(w.add('a', 'u', 'd1', ...two(500)), true);
    assert.equal(w.add('a', 'u', 'd1', ...two(500)), true);
    assert.equal(w.add('a', 'u', 'd1', ...two(1)), false, 'd1 is at its quota');
    assert.equal(w.add('a', 'u', 'd2', ...two(500)), true, 'd2 is not');
    await w.close();
    assert.equal(w.add('a', 'u', 'd1', ...two(500)), true, 'the quota frees once written');
    await w.close();
  });

  test('a failed write is retried (a restarted store fails each pooled connection once), then given up', async () => {
    const written: string[][] = [];
    let failures = 1;
    let tick: (() => void) | undefined;
    const store = {
      ack: async (batch: { ids: string[] }[]) => {
        tick?.();
        if (failures-- > 0) throw new Error('terminating connection due to administrator command (57P01)');
        written.push(batch.flatMap((e) => e.ids));
      },
    };
    const next = () => new Promise<void>((r) => (tick = r));
    const publisher = { publish: async () => undefined } as unknown as BatchPublisher;
    const w = createAckWriter({ store, publisher, logger: pino({ level: 'silent' }), topic: 't', nodeId: 'n', flushMs: 5 });
    const first = next();
    assert.equal(w.add('a', 'u', 'd', ['01A'], [Date.now() + 60_000]), true);
    await first;
    await next();
    await w.close();
    assert.deepEqual(written, [['01A']], 'written on the second try');

    let calls = 0;
    const down = {
      ack: async () => {
        calls++;
        throw new Error('down');
      },
    };
    const w2 = createAckWriter({ store: down, publisher, logger: pino({ level: 'silent' }), topic: 't', nodeId: 'n', flushMs: 1, maxPending: 1 });
    assert.equal(w2.add('a', 'u', 'd', ['01B'], [Date.now() + 60_000]), true);
    await eventually(() => w2.add('a', 'u', 'd', ['01C'], [Date.now() + 60_000]), {
      what: 'the ack queue to take a new device',
      timeoutMs: 10_000,
      intervalMs: 5,
    });
    assert.ok(calls >= 6 && calls <= 7, `tried a bounded number of times (${calls})`);
    await w2.close();
  });
});
