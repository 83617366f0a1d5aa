import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectClient, startStack, wsOf, type TestClient, type TestStack } from './support/stack.js';
import { eventually } from './support/eventually.js';
import { runCli } from './support/cli.js';
import { Kafka, logLevel } from 'kafkajs';
import { stack } from './support/env.js';

describe('operator CLI against a live stack', () => {
  let s: TestStack;
  let env: Record<string, string>;
  let prefix: string;
  before(async () => {
    s = await startStack({ pushers: 1, env: { STATUS_SAMPLE_MS: '500' } });
    env = { PUSH_ADMIN_URL: s.admin.url, PUSH_COLLECTOR_URL: s.collector.url, PUSH_OPERATOR_KEY: 'operator-key', PUSH_APP_KEY: s.apiKey };
    prefix = s.env.KAFKA_TOPIC_PREFIX!;
  });
  after(async () => {
    await s?.stop();
  });
  const push = async (args: string[], extraEnv: Record<string, string> = {}) => {
    const r = await runCli(args, { ...env, ...extraEnv });
    return r;
  };
  const ok = async (args: string[]) => {
    const r = await push([...args, '--json']);
    assert.equal(r.code, 0, `push ${args.join(' ')}: ${r.stderr}`);
    return r.json;
  };
  const nodeId = () => `${prefix.replace(/\.$/, '')}-p1`;

  test('status: every service healthy and ready, the node, lag per group and partition, tasks, dead letters', { timeout: 60_000 }, async () => {
    const st = await ok(['status']);
    const names = st.services.map((x: any) => x.name);
    assert.deepEqual(names, ['collector', 'auth', 'admin', 'dispatcher', `pusher ${nodeId()}`]);
    for (const svc of st.services) assert.deepEqual([svc.name, svc.healthy, svc.ready], [svc.name, true, true]);
    assert.deepEqual(
      st.nodes.map((n: any) => [n.id, n.connections, n.draining, n.ready]),
      [[nodeId(), 0, false, true]],
    );
    const dispatcherGroup = st.lag.groups.find((g: any) => g.group === `${prefix}push-dispatcher`);
    assert.ok(dispatcherGroup, `groups: ${st.lag.groups.map((g: any) => g.group)}`);
    assert.equal(dispatcherGroup.topics[0].topic, `${prefix}push.ingest`);
    assert.equal(dispatcherGroup.topics[0].partitions.length, 4);
    assert.equal(dispatcherGroup.members, 1);
    assert.equal(st.dlq.topic, `${prefix}push.dlq`);
    assert.equal(typeof st.dlq.records, 'number');
    assert.equal(st.dlq.entries, 0);
    // The same lag and dead-letter figures are Prometheus gauges on the admin service.
    const metrics = await (await fetch(`${s.admin.url}/metrics`)).text();
    assert.match(metrics, new RegExp(`push_consumer_lag\\{group="${prefix}push-dispatcher",topic="${prefix}push.ingest",service="admin"\\} \\d+`));
    assert.match(metrics, /push_dead_letter_records\{service="admin"\} 0/);
    const dispatcherMetrics = await (await fetch(`${s.dispatchers[0]!.url}/metrics`)).text();
    assert.match(dispatcherMetrics, /push_publish_queue_depth\{service="dispatcher"\} 0/);
    assert.deepEqual(st.tasks.recent, []);
    // Human output: the same facts as tables.
    const human = await push(['status']);
    assert.equal(human.code, 0);
    assert.match(human.stdout, new RegExp(`${nodeId()}\\s+0\\s`));
    assert.match(human.stdout, /collector\s+http:\/\/127\.0\.0\.1:\d+\s+up\s+ready/);
  });

  test('send, presence, lag and kick: the message arrives, the device shows online, lag drains to 0, kick closes with 4009', { timeout: 60_000 }, async () => {
    const c = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('dana', 'tablet')).token);
    const sent = await ok(['send', '--user', 'dana', '--payload', '{"text":"from the cli"}', '--trace-id', 'cli-trace-1']);
    assert.match(sent.id, /^[0-9A-Z]{26}$/);
    assert.equal(sent.status, 'accepted');
    await c.waitFor(1);
    assert.deepEqual([c.messages[0]!.id, c.messages[0]!.payload], [sent.id, { text: 'from the cli' }]);
    const transient = await ok(['send', '--user', 'dana', '--transient', '--payload', 'typing']);
    await c.waitFor(2);
    assert.deepEqual([c.messages[1]!.id, c.messages[1]!.persistent, c.messages[1]!.payload], [transient.id, false, 'typing']);
    assert.equal((await ok(['trace', sent.id])).traceId, 'cli-trace-1');

    const presence = await ok(['users', 'presence', 'dana']);
    assert.equal(presence.online, true);
    assert.deepEqual(
      presence.devices.map((d: any) => [d.deviceId, d.nodeId]),
      [['tablet', nodeId()]],
    );

    const lag = await eventually(
      async () => {
        const l = await ok(['lag', '--group', 'push-dispatcher']);
        return l.groups.length === 1 && l.total === 0 ? l : undefined;
      },
      { what: 'dispatcher lag 0', timeoutMs: 15_000, intervalMs: 500 },
    );
    assert.equal(lag.groups[0].group, `${prefix}push-dispatcher`);

    const kicked = await ok(['users', 'kick', 'dana', '--app', s.app, '--reason', 'maintenance']);
    assert.deepEqual([kicked.status, kicked.user], ['requested', 'dana']);
    assert.equal((await c.closed).code, 4009);
    await eventually(async () => (await ok(['users', 'presence', 'dana'])).online === false, { what: 'offline after kick' });
  });

  test('tasks: list, show, pause, resume and stop a rate-limited broadcast; a finished task refuses pause', { timeout: 90_000 }, async () => {
    const clients: TestClient[] = [];
    for (let i = 0; i < 20; i++) clients.push(await connectClient(wsOf(s.pushers[0]!.url), (await s.token(`t${i}`, 'd')).token));
    const sent = await ok(['send', '--all', '--transient', '--rate', '2', '--payload', '"slow"']);
    assert.match(sent.taskId, /^[0-9A-Z]{26}$/);
    const listed = await ok(['tasks', 'list', '--app', s.app]);
    assert.deepEqual(
      listed.tasks.map((t: any) => t.id),
      [sent.taskId],
    );
    assert.equal((await ok(['tasks', 'pause', sent.taskId])).state, 'paused');
    assert.equal((await ok(['tasks', 'show', sent.taskId])).state, 'paused');
    assert.equal((await ok(['tasks', 'resume', sent.taskId])).state, 'running');
    assert.equal((await ok(['tasks', 'stop', sent.taskId])).state, 'stopped');
    const shown = await ok(['tasks', 'show', sent.taskId]);
    assert.equal(shown.state, 'stopped');
    assert.ok(shown.totals.written < 20, `stopped before the end: ${shown.totals.written}`);
    const again = await push(['tasks', 'pause', sent.taskId]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /409 INVALID_TRANSITION: a stopped task cannot become paused/);
    const human = await push(['tasks', 'list']);
    assert.match(human.stdout, new RegExp(`${sent.taskId}\\s+${s.app}\\s+all\\s+stopped`));
    await Promise.all(clients.map((c) => c.close()));
  });

  test('nodes: list, then drain a second pusher, which leaves the list and exits 0', { timeout: 90_000 }, async () => {
    const extra = await s.startPusher('p2');
    const id2 = `${prefix.replace(/\.$/, '')}-p2`;
    const listed = await eventually(
      async () => {
        const l = await ok(['nodes', 'list']);
        return l.nodes.length === 2 ? l : undefined;
      },
      { what: 'two nodes' },
    );
    assert.deepEqual(listed.nodes.map((n: any) => n.id).sort(), [nodeId(), id2].sort());
    // The node's admin listener: loopback, apart from its public port.
    const adminUrl2 = listed.nodes.find((n: any) => n.id === id2).adminUrl;
    assert.match(adminUrl2, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(adminUrl2, extra.url);
    const drained = await ok(['nodes', 'drain', id2]);
    assert.deepEqual(drained, { status: 'draining', nodeId: id2 });
    assert.equal(await new Promise((r) => extra.proc.once('exit', r)), 0);
    await eventually(async () => (await ok(['nodes', 'list'])).nodes.length === 1, { what: 'drained node gone' });
    const unknown = await push(['nodes', 'drain', 'no-such-node']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, new RegExp(`404 NOT_FOUND: no live node no-such-node; live nodes: ${nodeId()}`));
  });

  test('replay: a dry run counts the range per partition and app; start, show, list and stop a paced replay', { timeout: 90_000 }, async () => {
    const from = new Date().toISOString();
    for (let i = 0; i < 30; i++) assert.equal((await s.send({ to: { users: ['replayed-user'] }, payload: `r${i}` })).status, 202);
    await eventually(async () => (await ok(['lag', '--group', 'push-dispatcher'])).total === 0, { what: 'ingested', timeoutMs: 15_000, intervalMs: 300 });
    const to = new Date(Date.now() + 1000).toISOString();
    const dry = await ok(['replay', 'start', '--topic', 'ingest', '--from', from, '--to', to, '--user', 'replayed-user', '--dry-run']);
    assert.equal(dry.dryRun, true);
    assert.equal(dry.total, 30);
    assert.deepEqual(dry.apps, { [s.app]: 30 });
    assert.equal(
      dry.partitions.reduce((n: number, p: any) => n + p.matched, 0),
      30,
    );
    const human = await push(['replay', 'start', '--topic', 'ingest', '--from', from, '--to', to, '--user', 'replayed-user', '--dry-run']);
    assert.match(human.stdout, /30 records would be replayed/);

    const started = await ok(['replay', 'start', '--topic', 'push.ingest', '--from', from, '--to', to, '--user', 'replayed-user', '--rate', '1']);
    assert.match(started.id, /^[0-9A-Z]{26}$/);
    assert.equal((await ok(['replay', 'show', started.id])).id, started.id);
    assert.ok((await ok(['replay', 'list'])).replays.some((r: any) => r.id === started.id));
    const stopped = await ok(['replay', 'stop', started.id]);
    assert.equal(stopped.state, 'stopped');
    assert.ok(stopped.progress.replayed < 30, `stopped part way: ${JSON.stringify(stopped.progress)}`);
    const again = await push(['replay', 'stop', started.id]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /409 INVALID_TRANSITION/);
    const future = await push([
      'replay',
      'start',
      '--topic',
      'ingest',
      '--from',
      new Date(Date.now() + 3_600_000).toISOString(),
      '--to',
      new Date(Date.now() + 7_200_000).toISOString(),
    ]);
    assert.equal(future.code, 1);
    assert.match(future.stderr, /400 INVALID_REQUEST: from is in the future/);
  });

  test('dlq: a poison record on push.events is listed, shown, replayed and purged', { timeout: 90_000 }, async () => {
    const kafka = new Kafka({ clientId: 'cli-test', brokers: [stack.kafkaBrokers[0]!], logLevel: logLevel.NOTHING });
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic: `${prefix}push.events`, messages: [{ key: 'poison', value: Buffer.from('not avro at all') }] });
    await producer.disconnect();
    const listed = await eventually(
      async () => {
        const l = await ok(['dlq', 'list', '--source-topic', `${prefix}push.events`]);
        return l.total >= 1 ? l : undefined;
      },
      { what: 'dead letter indexed', timeoutMs: 30_000, intervalMs: 500 },
    );
    const entry = listed.entries[0];
    assert.equal(entry.sourceTopic, `${prefix}push.events`);
    assert.equal(entry.key, 'poison');
    const shown = await ok(['dlq', 'show', entry.id]);
    assert.equal(Buffer.from(shown.valueBase64, 'base64').toString(), 'not avro at all');
    assert.equal((await ok(['status'])).dlq.entries, listed.total);
    const replayed = await ok(['dlq', 'replay', '--id', entry.id]);
    assert.deepEqual(replayed, { replayed: 1, failed: [] });
    const purged = await ok(['dlq', 'purge', '--all', '--yes']);
    assert.ok(purged.purged >= 1, JSON.stringify(purged));
    const missing = await push(['dlq', 'show', entry.id]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /404 NOT_FOUND/);
  });

  test('bad arguments, bad keys and unreachable services: non-zero exit codes and clear messages', { timeout: 60_000 }, async () => {
    const cases: [string[], number, RegExp, Record<string, string>?][] = [
      [['frobnicate'], 2, /unknown command "frobnicate" for "push"/],
      [['tasks'], 2, /missing command for "push tasks"/],
      [['tasks', 'show'], 2, /missing argument <taskId> \(see push tasks show --help\)/],
      [['tasks', 'list', '--limit', '9999'], 2, /--limit must be at most 500/],
      [['send', '--user', 'a', '--all'], 2, /choose exactly one recipient/],
      [['send', '--user', 'a', '--ttl', 'soon'], 2, /--ttl must be a number, got "soon"/],
      [['users', 'kick', 'dana'], 2, /--app is required/],
      [['replay', 'start', '--from', '1', '--to', '2'], 2, /--topic is required/],
      [['replay', 'start', '--topic', 'upstream', '--from', '1', '--to', '2'], 2, /--topic must be one of ingest, events, push.ingest, push.events/],
      [['replay', 'start', '--topic', 'ingest', '--from', 'yesterday', '--to', '2'], 2, /--from must be an ISO date/],
      [['dlq', 'replay'], 2, /give --id <id,...> or --all/],
      [['dlq', 'purge', '--id', 'a', '--all'], 2, /give --id or --all, not both/],
      [['dlq', 'purge', '--all'], 2, /purging every dead letter needs --yes/],
      [['status', '--key', 'wrong'], 1, /401 UNAUTHORIZED: operator key required/],
      [['send', '--user', 'a', '--app-key', 'wrong'], 1, /401 UNAUTHORIZED: unknown API key/],
      [['tasks', 'show', '01ARZ3NDEKTSV4RRFFQ69G5FAV'], 1, /404 NOT_FOUND: no task 01ARZ3NDEKTSV4RRFFQ69G5FAV/],
      [['status', '--url', 'http://127.0.0.1:9'], 3, /cannot reach http:\/\/127\.0\.0\.1:9\/v1\/admin\/status/],
      [['status', '--url', 'not a url'], 2, /--url \/ PUSH_ADMIN_URL must be an http\(s\) URL/],
      [
        ['status'],
        2,
        /an operator key is required for https:\/\/push\.example\.com: set PUSH_OPERATOR_KEY or pass --key/,
        { PUSH_ADMIN_URL: 'https://push.example.com', PUSH_OPERATOR_KEY: '' },
      ],
    ];
    for (const [args, code, message, extra] of cases) {
      const r = await push(args, extra);
      assert.equal(r.code, code, `push ${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message, `push ${args.join(' ')}`);
      assert.equal(r.stdout.includes('"error"'), false);
    }
  });

  test('--help through the bin shim, on the root, a group and a leaf command', { timeout: 30_000 }, async () => {
    for (const args of [['--help'], ['dlq', '--help'], ['replay', 'start', '--help']]) {
      const r = await push(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`^Usage: ${['push', ...args.slice(0, -1)].join(' ')}`));
    }
    assert.match((await push(['replay', 'start', '--help'])).stdout, /--dry-run\s+count only, replay nothing/);
  });
});
