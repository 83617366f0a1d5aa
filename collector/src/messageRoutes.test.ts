import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import type { Message } from 'kafkajs';
import { Registry } from 'prom-client';
import { DEFAULT_LIMITS, type App } from '../../common/src/apps.js';
import { createLogger } from '../../common/src/logger.js';
import { PushError } from '../../common/src/errors.js';
import type { BatchPublisher } from '../../common/src/batchPublisher.js';
import { decodeRecord } from '../../schemas/registry.js';
import { createCollectorMetrics } from './collectorMetrics.js';
import { createMessageListener, type MessageRouteDeps } from './messageRoutes.js';

const app: App = { _id: 'demo', name: 'demo', apiKeyHashes: [], allowedOrigins: ['*'], deviceMode: 'coexist', openGroups: true, limits: { ...DEFAULT_LIMITS, maxPayloadBytes: 512 }, createdAt: new Date() };

let server: http.Server;
let url: string;
let published: { topic: string; messages: Message[] }[] = [];
let publishError: Error | undefined;
let waitMs = 0;
let lookupError: Error | undefined;
let fallbacks = 0;

before(async () => {
  const publisher: BatchPublisher = {
    async publish(topic, messages) {
      if (publishError) throw publishError;
      published.push({ topic, messages });
    },
    queued: () => 0,
    close: async () => undefined,
  };
  const deps = {
    publisher,
    metrics: createCollectorMetrics(new Registry()),
    logger: createLogger('collector-test', 'silent'),
    markPublished: () => undefined,
    ingestTopic: 'push.ingest',
    apiKeys: async (key: string) => {
      if (lookupError) throw lookupError;
      return key === 'good-key' ? app : undefined;
    },
    limiter: { take: async () => waitMs },
    maxBodyBytes: 2048,
  } as unknown as MessageRouteDeps;
  server = http.createServer(
    createMessageListener(deps, (_req, res) => {
      fallbacks++;
      res.writeHead(299).end();
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(() => server.close());

const post = async (body: string | Buffer, headers: Record<string, string> = {}, path = '/v1/messages') => {
  const res = await fetch(url + path, { method: 'POST', headers: { authorization: 'Bearer good-key', 'content-type': 'application/json', ...headers }, body });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text ? JSON.parse(text) : undefined };
};

test('a submission is answered 202 with its id and published as one ingest record per user', async () => {
  published = [];
  const res = await post(JSON.stringify({ to: { users: ['alice', 'bob', 'alice'] }, payload: { n: 1 }, persistent: false }), { 'content-type': 'application/json; charset=UTF-8' });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(res.body.status, 'accepted');
  assert.equal(published.length, 1);
  const [{ topic, messages }] = published as [{ topic: string; messages: Message[] }];
  assert.equal(topic, 'push.ingest');
  assert.deepEqual(messages.map((m) => m.key), ['demo|alice', 'demo|bob']);
  const rec = decodeRecord('IngestRecord', messages[1]!.value as Buffer, messages[1]!.headers as Record<string, string>);
  assert.deepEqual([rec.id, rec.user, rec.payload, rec.persistent, rec.traceId], [res.body.id, 'bob', '{"n":1}', false, res.body.id]);
  assert.equal(messages[1]!.headers!['push-trace'], res.body.id);
});

test('each refusal has the status, code and message of the express route', async () => {
  const cases: [string, () => ReturnType<typeof post>, number, string, RegExp][] = [
    ['no key', () => post('{}', { authorization: '' }), 401, 'UNAUTHORIZED', /missing Authorization/],
    ['unknown key', () => post('{}', { authorization: 'Bearer nope' }), 401, 'UNAUTHORIZED', /unknown API key/],
    ['not JSON', () => post('hello', { 'content-type': 'text/plain' }), 415, 'UNSUPPORTED_MEDIA_TYPE', /must be application\/json/],
    ['invalid JSON', () => post('{"to":'), 400, 'INVALID_JSON', /not valid JSON/],
    ['empty body', () => post(''), 400, 'INVALID_REQUEST', /to: must be one of/],
    ['array body', () => post('[1]'), 400, 'INVALID_REQUEST', /body must be a JSON object/],
    ['body too large', () => post(JSON.stringify({ to: { users: ['u'] }, payload: 'x'.repeat(3000) })), 413, 'PAYLOAD_TOO_LARGE', /request body is too large/],
    ['payload too large', () => post(JSON.stringify({ to: { users: ['u'] }, payload: 'x'.repeat(600) })), 413, 'PAYLOAD_TOO_LARGE', /at most 512/],
  ];
  for (const [name, send, status, code, message] of cases) {
    const res = await send();
    assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, code, name);
    assert.match(res.body.error.message, message, name);
  }
});

test('503 when the key cannot be checked or Kafka refuses, 429 when rate limited, each with Retry-After', async () => {
  const body = JSON.stringify({ to: { users: ['u'] }, payload: 1, persistent: false });
  lookupError = new Error('store down');
  let res = await post(body);
  lookupError = undefined;
  assert.deepEqual([res.status, res.body.error.code, res.headers.get('retry-after')], [503, 'UNAVAILABLE', '1']);
  publishError = new PushError('KAFKA_UNAVAILABLE', 'cannot publish to Kafka: down', { status: 503, retriable: true });
  res = await post(body);
  publishError = undefined;
  assert.deepEqual([res.status, res.body.error.code, res.headers.get('retry-after')], [503, 'KAFKA_UNAVAILABLE', '1']);
  waitMs = 1500;
  res = await post(body);
  waitMs = 0;
  assert.deepEqual([res.status, res.body.error.code, res.headers.get('retry-after'), res.body.error.details], [429, 'RATE_LIMITED', '2', { retryAfterMs: 1500 }]);
});

test('compressed bodies, other charsets, other paths and methods are left to the express app', async () => {
  fallbacks = 0;
  assert.equal((await post(gzipSync(JSON.stringify({ to: { users: ['u'] }, payload: 1 })), { 'content-encoding': 'gzip' })).status, 299);
  assert.equal((await post('{}', { 'content-type': 'application/json; charset=utf-16' })).status, 299);
  assert.equal((await post('{}', {}, '/v1/messages?x=1')).status, 299);
  assert.equal((await post('{}', {}, '/v1/tasks')).status, 299);
  assert.equal((await fetch(`${url}/v1/messages`)).status, 299);
  assert.equal(fallbacks, 5);
});
