import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PushError } from '../../platform/errors.js';
import { parseReplayRequest } from './replayRequest.js';

const NOW = Date.parse('2026-11-22T12:00:00Z');
const parse = (body: unknown) => parseReplayRequest(body, { maxRangeMs: 24 * 3_600_000, now: NOW });

test('ISO dates and epoch milliseconds both work; defaults apply', () => {
  assert.deepEqual(parse({ topic: 'push.ingest', from: '2026-11-22T10:00:00Z', to: NOW }), {
    topic: 'push.ingest',
    fromMs: Date.parse('2026-11-22T10:00:00Z'),
    toMs: NOW,
    ratePerSecond: 1000,
    dryRun: false,
  });
  const r = parse({ topic: 'push.events', from: '2026-11-22T10:00:00.5+01:00', to: '2026-11-22T11:00:00Z', app: 'shop', ratePerSecond: 50_000, dryRun: true });
  assert.deepEqual([r.fromMs, r.app, r.ratePerSecond, r.dryRun], [Date.parse('2026-11-22T09:00:00.500Z'), 'shop', 50_000, true]);
});

test('every bad input is a 400 INVALID_REQUEST naming its field', () => {
  const cases: [unknown, string][] = [
    [{ topic: 'push.ingest', from: NOW, to: NOW - 1 }, 'from'],
    [{ topic: 'push.dlq', from: NOW - 1, to: NOW }, 'topic'],
    [{ topic: 'push.ingest', from: 1.5, to: NOW }, 'from'],
    [{ topic: 'push.ingest', from: -1, to: NOW }, 'from'],
    [{ topic: 'push.events', from: '0864-08-25T12:12:55.0Z', to: '0864-08-25T12:12:55.0Z' }, 'from'],
    [{ topic: 'push.ingest', from: 0, to: '1969-12-31T23:59:59Z' }, 'to'],
    [{ topic: 'push.ingest', from: NOW - 1, to: 'noon' }, 'to'],
    [{ topic: 'push.ingest', from: NOW - 25 * 3_600_000, to: NOW }, 'to'],
    [{ topic: 'push.ingest', from: NOW + 1, to: NOW + 2 }, 'from'],
    [{ topic: 'push.ingest', from: NOW - 1, to: NOW, app: '' }, 'app'],
    [{ topic: 'push.ingest', from: NOW - 1, to: NOW, user: 'a b' }, 'user'],
    [{ topic: 'push.events', from: NOW - 1, to: NOW, user: 'u1' }, 'user'],
    [{ topic: 'push.ingest', from: NOW - 1, to: NOW, ratePerSecond: 2.5 }, 'ratePerSecond'],
    [{ topic: 'push.ingest', from: NOW - 1, to: NOW, dryRun: 1 }, 'dryRun'],
    [{ topic: 'push.ingest', from: NOW - 1, to: NOW, extra: 1 }, 'extra'],
  ];
  for (const [body, field] of cases) {
    assert.throws(
      () => parse(body),
      (err: unknown) => err instanceof PushError && err.status === 400 && err.code === 'INVALID_REQUEST' && (err.details as { field?: string }).field === field,
      JSON.stringify(body),
    );
  }
  assert.throws(() => parse(null), /body must be a JSON object/);
});
