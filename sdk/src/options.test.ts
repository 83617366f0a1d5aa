import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WebSocket } from 'ws';
import { DEFAULTS, PushOptionsError, resolveOptions, type PushClientOptions } from './options.js';
import { heartbeatTimings } from './heartbeat.js';
import { tokenExpiresAt } from './tokenExpiry.js';
import { sessionUrl } from './sessionCheck.js';

const base: PushClientOptions = { token: 't', nodes: ['ws://127.0.0.1:8090/v1/ws'], WebSocket };

test('defaults are applied from one table', () => {
  const o = resolveOptions(base);
  assert.deepEqual(o.backoff, DEFAULTS.backoff);
  assert.equal(o.ackBatchMs, DEFAULTS.ackBatchMs);
  assert.equal(o.ackBatchMax, DEFAULTS.ackBatchMax);
  assert.equal(o.dedupeSize, DEFAULTS.dedupeSize);
  assert.equal(o.autoAck, true);
  assert.equal(o.heartbeatMs, undefined, 'taken from the welcome frame');
  assert.equal(o.connectivity, undefined, 'Node has no window events');
  assert.equal(resolveOptions({ ...base, backoff: { minMs: 60_000 } }).backoff.maxMs, 60_000, 'maxMs follows a larger minMs');
});

test('bad options and bad combinations throw at construction, naming the option', () => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['no token', { token: '' }, /token must be a non-empty string/],
    ['no nodes', { nodes: [] }, /nodes must be a non-empty array/],
    ['http node', { nodes: ['http://x/v1/ws'] }, /"http:\/\/x\/v1\/ws" is not a ws/],
    ['getToken not a function', { getToken: 'abc' }, /getToken must be a function/],
    ['negative heartbeat', { heartbeatMs: -1 }, /heartbeatMs must be a positive integer/],
    [
      'timeout not above interval',
      { heartbeatMs: 10_000, heartbeatTimeoutMs: 10_000 },
      /heartbeatTimeoutMs \(10000\) must be larger than heartbeatMs \(10000\)/,
    ],
    ['max below min', { backoff: { minMs: 1000, maxMs: 500 } }, /backoff.maxMs \(500\) must not be smaller than backoff.minMs \(1000\)/],
    ['fractional min', { backoff: { minMs: 1.5 } }, /backoff.minMs must be a positive integer/],
    ['batch above the server limit', { ackBatchMax: 501 }, /ackBatchMax must be at most 500/],
    ['zero dedupe', { dedupeSize: 0 }, /dedupeSize must be a positive integer/],
    ['autoAck not boolean', { autoAck: 'yes' }, /autoAck must be a boolean/],
  ];
  for (const [name, patch, message] of cases) {
    assert.throws(
      () => resolveOptions({ ...base, ...patch } as PushClientOptions),
      (err: unknown) => err instanceof PushOptionsError && message.test((err as Error).message),
      name,
    );
  }
});

test('without a WebSocket implementation the error says what to pass', () => {
  const saved = (globalThis as { WebSocket?: unknown }).WebSocket;
  (globalThis as { WebSocket?: unknown }).WebSocket = undefined;
  try {
    assert.throws(() => resolveOptions({ token: 't', nodes: base.nodes }), /pass the WebSocket option/);
  } finally {
    (globalThis as { WebSocket?: unknown }).WebSocket = saved;
  }
});

test('heartbeat timings: options win; otherwise the server interval, kept below the timeout', () => {
  const d = { heartbeatMs: 25_000, graceMs: 10_000 };
  assert.deepEqual(heartbeatTimings({ heartbeatMs: undefined, heartbeatTimeoutMs: undefined }, 2000, d), { intervalMs: 2000, timeoutMs: 12_000 });
  assert.deepEqual(heartbeatTimings({ heartbeatMs: undefined, heartbeatTimeoutMs: undefined }, undefined, d), { intervalMs: 25_000, timeoutMs: 35_000 });
  assert.deepEqual(heartbeatTimings({ heartbeatMs: 5000, heartbeatTimeoutMs: undefined }, 2000, d), { intervalMs: 5000, timeoutMs: 15_000 });
  assert.deepEqual(heartbeatTimings({ heartbeatMs: undefined, heartbeatTimeoutMs: 8000 }, 25_000, d), { intervalMs: 4000, timeoutMs: 8000 });
});

test('token expiry is read from the JWT payload without verifying; anything else is unknown', () => {
  const jwt = (claims: object) => `h.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.s`;
  assert.equal(tokenExpiresAt(jwt({ sub: 'u', exp: 1_700_000_000 })), 1_700_000_000_000);
  assert.equal(tokenExpiresAt(jwt({ sub: 'ü?>>', exp: 5 })), 5000, 'base64url characters decode');
  assert.equal(tokenExpiresAt(jwt({ sub: 'u' })), undefined);
  assert.equal(tokenExpiresAt('opaque'), undefined);
  assert.equal(tokenExpiresAt('a.%%%.c'), undefined);
});

test('the session URL is the node URL over HTTP with /session for /ws', () => {
  assert.equal(sessionUrl('ws://127.0.0.1:8090/v1/ws', 'a b'), 'http://127.0.0.1:8090/v1/session?token=a+b');
  assert.equal(sessionUrl('wss://push.example.com/v1/ws?x=1', 't'), 'https://push.example.com/v1/session?token=t');
  assert.equal(sessionUrl('wss://push.example.com/', 't'), 'https://push.example.com/v1/session?token=t');
});
