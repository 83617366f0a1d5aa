import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  authedFrame,
  errorFrame,
  kickFrame,
  messageFrame,
  pongFrame,
  reconnectFrame,
  subscribedFrame,
  tokenExpiringFrame,
  unsubscribedFrame,
  welcomeFrame,
} from './frames.js';
import { FRAME_ERROR } from './codes.js';

// Clients parse these bytes (docs/protocol.md): each expectation is the literal text the pusher
// sent before the builders existed. A change here is a protocol change, not a refactoring.
const T1 = Date.UTC(2025, 5, 1, 13, 0, 0, 0);
const T2 = Date.UTC(2025, 5, 1, 14, 0, 0, 5);

test('message frames carry the payload text as is, and a collapse key only when set', () => {
  const m = { id: '01JXA3K4Q9ABCDEFGHJKMNPQRS', payload: '{"n":1,"s":"é\\""}', persistent: true, createdAt: T1, expiresAt: T2 };
  assert.equal(
    messageFrame(m),
    '{"type":"message","id":"01JXA3K4Q9ABCDEFGHJKMNPQRS","persistent":true,"sentAt":"2025-06-01T13:00:00.000Z","expiresAt":"2025-06-01T14:00:00.005Z","payload":{"n":1,"s":"é\\""}}',
  );
  assert.equal(
    messageFrame({ ...m, persistent: false, payload: '7', collapseKey: 'order-"42"' }),
    '{"type":"message","id":"01JXA3K4Q9ABCDEFGHJKMNPQRS","persistent":false,"sentAt":"2025-06-01T13:00:00.000Z","expiresAt":"2025-06-01T14:00:00.005Z","collapseKey":"order-\\"42\\"","payload":7}',
  );
  assert.equal(messageFrame({ ...m, payload: 'null', collapseKey: null }), messageFrame({ ...m, payload: 'null' }));
  assert.deepEqual(JSON.parse(messageFrame({ ...m, collapseKey: 'k' })).collapseKey, 'k');
});

test('welcome, pong, token-expiring and authed frames', () => {
  assert.equal(welcomeFrame('node-1', 'aB3_-x9z', 25_000), '{"type":"welcome","nodeId":"node-1","connId":"aB3_-x9z","heartbeatMs":25000}');
  assert.equal(welcomeFrame('n"1', 'c', 1), '{"type":"welcome","nodeId":"n\\"1","connId":"c","heartbeatMs":1}');
  assert.equal(pongFrame(), '{"type":"pong"}');
  assert.equal(tokenExpiringFrame(T1), '{"type":"token-expiring","expiresAt":"2025-06-01T13:00:00.000Z"}');
  assert.equal(authedFrame(T2), '{"type":"authed","expiresAt":"2025-06-01T14:00:00.005Z"}');
});

test('subscribed and unsubscribed frames, with a reason when sent unasked', () => {
  assert.equal(subscribedFrame('news.eu:1'), '{"type":"subscribed","group":"news.eu:1"}');
  assert.equal(unsubscribedFrame('news'), '{"type":"unsubscribed","group":"news"}');
  assert.equal(
    unsubscribedFrame('news', 'the renewed token does not grant this group'),
    '{"type":"unsubscribed","group":"news","reason":"the renewed token does not grant this group"}',
  );
});

test('error frames: code and message, then the group or the ids they concern', () => {
  assert.equal(errorFrame(FRAME_ERROR.BAD_FRAME, 'frame is not valid JSON'), '{"type":"error","code":"BAD_FRAME","message":"frame is not valid JSON"}');
  assert.equal(
    errorFrame(FRAME_ERROR.RATE_LIMITED, 'too many frames; slow down'),
    '{"type":"error","code":"RATE_LIMITED","message":"too many frames; slow down"}',
  );
  assert.equal(
    errorFrame(FRAME_ERROR.BAD_FRAME, 'unknown frame type "x\\"y"'),
    '{"type":"error","code":"BAD_FRAME","message":"unknown frame type \\"x\\\\\\"y\\""}',
  );
  assert.equal(
    errorFrame(FRAME_ERROR.GROUP_FORBIDDEN, 'cannot subscribe to vip', { group: 'vip' }),
    '{"type":"error","code":"GROUP_FORBIDDEN","message":"cannot subscribe to vip","group":"vip"}',
  );
  assert.equal(
    errorFrame(FRAME_ERROR.UNAVAILABLE, 'cannot subscribe to vip now; retry', { group: 'vip' }),
    '{"type":"error","code":"UNAVAILABLE","message":"cannot subscribe to vip now; retry","group":"vip"}',
  );
  assert.equal(
    errorFrame(FRAME_ERROR.ACK_BACKLOG, 'acks are backing up; resend these ids later', { ids: ['01JXA3K4Q9ABCDEFGHJKMNPQRS'] }),
    '{"type":"error","code":"ACK_BACKLOG","message":"acks are backing up; resend these ids later","ids":["01JXA3K4Q9ABCDEFGHJKMNPQRS"]}',
  );
  assert.equal(
    errorFrame(FRAME_ERROR.UPSTREAM_BACKLOG, "the node's upstream queue is full; this frame was not taken, resend it later"),
    `{"type":"error","code":"UPSTREAM_BACKLOG","message":"the node's upstream queue is full; this frame was not taken, resend it later"}`,
  );
  assert.equal(
    errorFrame(FRAME_ERROR.UPSTREAM_UNAVAILABLE, 'upstream could not be published; retry later'),
    '{"type":"error","code":"UPSTREAM_UNAVAILABLE","message":"upstream could not be published; retry later"}',
  );
  assert.equal(errorFrame(FRAME_ERROR.TOKEN_REFUSED, 'TOKEN_EXPIRED: gone'), '{"type":"error","code":"TOKEN_REFUSED","message":"TOKEN_EXPIRED: gone"}');
});

test('kick and reconnect frames', () => {
  assert.equal(kickFrame('signed in on another device'), '{"type":"kick","reason":"signed in on another device"}');
  assert.equal(kickFrame('a "quoted" reason'), '{"type":"kick","reason":"a \\"quoted\\" reason"}');
  assert.equal(
    reconnectFrame(['ws://127.0.0.1:8091/v1/ws', 'ws://127.0.0.1:8092/v1/ws']),
    '{"type":"reconnect","nodes":["ws://127.0.0.1:8091/v1/ws","ws://127.0.0.1:8092/v1/ws"]}',
  );
  assert.equal(reconnectFrame([]), '{"type":"reconnect","nodes":[]}');
});
