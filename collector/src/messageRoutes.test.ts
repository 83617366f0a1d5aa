import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { brotliCompressSync, createGzip, deflateSync, gzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import type { Message } from 'kafkajs';
import { Registry } from 'prom-client';
import { DEFAULT_LIMITS, type App } from '../../store/apps.js';
import { createLogger } from '../../platform/logger.js';
import { PushError } from '../../platform/errors.js';
import type { BatchPublisher } from '../../platform/kafka/batchPublisher.js';
import { decodeRecord } from '../../schemas/registry.js';
import { createCollectorMetrics } from './collectorMetrics.js';
import { createMessageHandler, type MessageRouteDeps } from './messageRoutes.js';

const app: App = {
  _id: 'demo',
  name: 'demo',
  apiKeyHashes: [],
  allowedOrigins: ['*'],
  deviceMode: 'coexist',
  openGroups: true,
  limits: { ...DEFAULT_LIMITS, maxPayloadBytes: 512 },
  createdAt: new Date(),
};

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
    createMessageHandler(deps).listener((_req, res) => {
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
  const res = await post(JSON.stringify({ to: { users: ['alice', 'bob', 'alice'] }, payload: { n: 1 }, persistent: false }), {
    'content-type': 'application/json; charset=UTF-8',
  });
  assert.equal(res.status, 202);
  assert.equal(res.headers.get('content-type'), 'application/json; charset=utf-8');
  assert.equal(res.body.status, 'accepted');
  assert.equal(published.length, 1);
  const [{ topic, messages }] = published as [{ topic: string; messages: Message[] }];
  assert.equal(topic, 'push.ingest');
  assert.deepEqual(
    messages.map((m) => m.key),
    ['demo|alice', 'demo|bob'],
  );
  const rec = decodeRecord('IngestRecord', messages[1]!.value as Buffer, messages[1]!.headers as Record<string, string>);
  assert.deepEqual([rec.id, rec.user, rec.payload, rec.persistent, rec.traceId], [res.body.id, 'bob', '{"n":1}', false, res.body.id]);
  assert.equal(messages[1]!.headers!['push-trace'], res.body.id);
});

test('each refusal has its documented status, code and message', async () => {
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
  assert.deepEqual(
    [res.status, res.body.error.code, res.headers.get('retry-after'), res.body.error.details],
    [429, 'RATE_LIMITED', '2', { retryAfterMs: 1500 }],
  );
});

/** The gzip of `mib` MiB of zeros, made a MiB at a time (never held inflated). */
async function gzipOfZeros(mib: number): Promise<Buffer> {
  const gzip = createGzip();
  const out: Buffer[] = [];
  gzip.on('data', (b: Buffer) => out.push(b));
  const done = new Promise((resolve) => gzip.on('end', resolve));
  const zeros = Buffer.alloc(1024 * 1024);
  for (let i = 0; i < mib; i++) if (!gzip.write(zeros)) await new Promise((resolve) => gzip.once('drain', resolve));
  gzip.end();
  await done;
  return Buffer.concat(out);
}

test('bodies under any accepted Content-Encoding and UTF charset, and the path with a query, are submitted', async () => {
  const json = JSON.stringify({ to: { users: ['u'] }, payload: 'é', persistent: false });
  const cases: [string, () => ReturnType<typeof post>][] = [
    ['gzip', () => post(gzipSync(json), { 'content-encoding': 'gzip' })],
    ['deflate', () => post(deflateSync(json), { 'content-encoding': 'deflate' })],
    ['br', () => post(brotliCompressSync(json), { 'content-encoding': 'br' })],
    ['identity', () => post(json, { 'content-encoding': 'Identity' })],
    ['utf8', () => post(json, { 'content-type': 'application/json; charset=utf8' })],
    ['utf-16le', () => post(Buffer.from(json, 'utf16le'), { 'content-type': 'application/json; charset=UTF-16LE' })],
    ['a BOM', () => post(`\ufeff${json}`)],
    ['a query', () => post(json, {}, '/v1/messages?x=1')],
  ];
  for (const [name, send] of cases) {
    published = [];
    const res = await send();
    assert.equal(res.status, 202, `${name}: ${JSON.stringify(res.body)}`);
    const rec = decodeRecord('IngestRecord', published[0]!.messages[0]!.value as Buffer, published[0]!.messages[0]!.headers as Record<string, string>);
    assert.equal(rec.payload, '"é"', name);
  }
});

test('bodies that cannot be decoded are refused with their documented answers', async () => {
  const json = JSON.stringify({ to: { users: ['u'] }, payload: 1, persistent: false });
  const cases: [string, () => ReturnType<typeof post>, number, string, RegExp][] = [
    ['unknown encoding', () => post(json, { 'content-encoding': 'compress' }), 415, 'UNSUPPORTED_ENCODING', /unsupported content encoding "compress"/],
    ['other charset', () => post(json, { 'content-type': 'application/json; charset=latin1' }), 415, 'UNSUPPORTED_ENCODING', /unsupported charset "LATIN1"/],
    ['not gzip', () => post(json, { 'content-encoding': 'gzip' }), 400, 'INVALID_REQUEST', /could not be decoded with its Content-Encoding/],
    [
      'truncated gzip',
      () => post(gzipSync(json).subarray(0, 20), { 'content-encoding': 'gzip' }),
      400,
      'INVALID_REQUEST',
      /could not be decoded with its Content-Encoding: unexpected end of file/,
    ],
    [
      'inflates too large',
      () => post(gzipSync(JSON.stringify({ to: { users: ['u'] }, payload: 'x'.repeat(3000) })), { 'content-encoding': 'gzip' }),
      413,
      'PAYLOAD_TOO_LARGE',
      /too large/,
    ],
    ['invalid JSON in gzip', () => post(gzipSync('{"to":'), { 'content-encoding': 'gzip' }), 400, 'INVALID_JSON', /not valid JSON/],
  ];
  for (const [name, send, status, code, message] of cases) {
    const res = await send();
    assert.equal(res.status, status, `${name}: ${JSON.stringify(res.body)}`);
    assert.equal(res.body.error.code, code, name);
    assert.match(res.body.error.message, message, name);
  }
});

test('a gzip bomb is refused 413 without inflating it into memory', async () => {
  const bomb = await gzipOfZeros(512);
  assert.ok(bomb.length < 1024 * 1024, `${bomb.length} bytes`);
  const before = process.memoryUsage();
  const res = await post(bomb, { 'content-encoding': 'gzip' });
  const grew = process.memoryUsage().rss - before.rss;
  assert.deepEqual([res.status, res.body.error.code], [413, 'PAYLOAD_TOO_LARGE']);
  assert.ok(grew < 128 * 1024 * 1024, `rss grew by ${grew} bytes`);
});

test('other paths and methods are left to the express app', async () => {
  fallbacks = 0;
  assert.equal((await post('{}', {}, '/v1/tasks')).status, 299);
  assert.equal((await fetch(`${url}/v1/messages`)).status, 299);
  assert.equal(fallbacks, 2);
});
