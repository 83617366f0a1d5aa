import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bucketsOf, createNodeUrlPolicy, parsePromText, pointBetween, quantileOf, sumOf, type Sample } from './statusSampler.js';
import { loadStatusConfig } from './statusConfig.js';

const TEXT = `# HELP push_delivered_total Message frames written
# TYPE push_delivered_total counter
push_delivered_total{path="live",service="pusher"} 40
push_delivered_total{path="resume",service="pusher"} 2
push_connections{service="pusher"} 7
push_end_to_end_seconds_bucket{le="0.01",service="pusher"} 50
push_end_to_end_seconds_bucket{le="0.1",service="pusher"} 90
push_end_to_end_seconds_bucket{le="+Inf",service="pusher"} 100
push_end_to_end_seconds_count{service="pusher"} 100
`;

test('Prometheus text: sums by label, histogram buckets, interpolated quantiles', () => {
  const m = parsePromText(TEXT);
  assert.equal(sumOf(m, 'push_delivered_total'), 42);
  assert.equal(sumOf(m, 'push_delivered_total', { path: 'live' }), 40);
  assert.equal(sumOf(m, 'push_connections'), 7);
  const b = bucketsOf(m, 'push_end_to_end_seconds');
  assert.deepEqual(
    [...b],
    [
      [0.01, 50],
      [0.1, 90],
      [Infinity, 100],
    ],
  );
  assert.equal(quantileOf(b, 0.5), 0.01);
  assert.ok(Math.abs(quantileOf(b, 0.7)! - 0.055) < 1e-9);
  assert.equal(quantileOf(b, 0.99), 0.1, 'the +Inf bucket reports its lower bound');
  assert.equal(quantileOf(new Map(), 0.5), null);
});

test('rates between samples ignore counter resets and nodes that just appeared', () => {
  const a: Sample = {
    at: 0,
    nodes: { n1: { connections: 1, delivered: 100, acked: 50, dropped: 0, up: true } },
    received: 10,
    forwarded: 10,
    latency: new Map(),
  };
  const b: Sample = {
    at: 2000,
    nodes: { n1: { connections: 3, delivered: 300, acked: 40, dropped: 0, up: true }, n2: { connections: 5, delivered: 999, acked: 9, dropped: 0, up: true } },
    received: 30,
    forwarded: 20,
    latency: new Map([
      [0.01, 4],
      [Infinity, 4],
    ]),
  };
  const p = pointBetween(a, b);
  assert.equal(p.deliveredPerSecond, 100);
  assert.equal(p.ackedPerSecond, 0, 'a restarted node (counter went down) counts 0, not negative');
  assert.equal(p.receivedPerSecond, 10);
  assert.equal(p.forwardedPerSecond, 5);
  assert.equal(p.connections, 8);
  assert.equal(p.latencyP50Ms, 5);
});

test('status configuration: defaults, and a bad DISPATCHER_URLS names the variable', () => {
  const c = loadStatusConfig({});
  assert.deepEqual(c, {
    collectorUrl: 'http://127.0.0.1:8080',
    authUrl: 'http://127.0.0.1:8081',
    nodeUrlHosts: ['loopback', '127.0.0.1'],
    dispatcherUrls: ['http://127.0.0.1:8083'],
    sampleMs: 5000,
  });
  assert.deepEqual(loadStatusConfig({ DISPATCHER_URLS: 'http://a:8083/, http://b:8083' }).dispatcherUrls, ['http://a:8083', 'http://b:8083']);
  assert.throws(() => loadStatusConfig({ DISPATCHER_URLS: 'a:8083' }), /DISPATCHER_URLS: expected comma-separated http\(s\) URLs, got "a:8083"/);
});

test('node URLs are called only on allowed hosts (NODE_URL_ALLOWED_HOSTS)', () => {
  const cfg = loadStatusConfig({ BIND_HOST: '10.0.0.5', COLLECTOR_URL: 'http://collector:8080', DISPATCHER_URLS: 'http://d2.internal:8083' });
  assert.deepEqual(cfg.nodeUrlHosts, ['loopback', '10.0.0.5', 'collector', '127.0.0.1', 'd2.internal']);
  const allow = createNodeUrlPolicy(cfg.nodeUrlHosts);
  for (const ok of ['http://127.0.0.1:9000', 'http://127.8.0.1:9000', 'http://localhost:1', 'http://[::1]:9090', 'http://10.0.0.5:9090', 'https://COLLECTOR:1'])
    assert.ok(allow(ok), ok);
  for (const no of ['http://169.254.169.254/latest', 'http://10.0.0.6:9090', 'http://evil.example', 'file:///etc/passwd', 'gopher://127.0.0.1:1', 'not a url'])
    assert.ok(!allow(no), no);
  assert.ok(createNodeUrlPolicy(['*'])('http://anywhere.example:1'));
  assert.deepEqual(loadStatusConfig({ NODE_URL_ALLOWED_HOSTS: 'pusher-1, pusher-2' }).nodeUrlHosts, ['pusher-1', 'pusher-2']);
  assert.throws(() => loadStatusConfig({ NODE_URL_ALLOWED_HOSTS: 'http://x/' }), /NODE_URL_ALLOWED_HOSTS: expected host names/);
});
