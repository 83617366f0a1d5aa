import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startPrivateKafka, startPrivateMongo, startPrivateRedis } from '../infra/stack.js';
import { startStack, type TestStack } from './support/stack.js';
import { freePort, startService, type RunningService } from './support/services.js';
import { eventually } from './support/eventually.js';
import { reconnectingDevice, submitCarefully, type Device } from './support/faultClients.js';
import { Redis } from 'ioredis';
import { MongoClient } from 'mongodb';
import { createDeliveryStore } from '../store/deliveryStore.js';
import { readTrace } from '../store/traceRecords.js';

/**
 * Issue 13 (A): "stored before sent, delivered at least once". Persistent
 * messages are submitted by a careful client (idempotency key, retries) while
 * the store (several times), Redis and Kafka restart and every service is
 * SIGKILLed. Every message answered 202 reaches its device, no logical message
 * is shown under two ids, and acks survive a reconnect.
 */
describe('durability under faults', () => {
  let kafka: Awaited<ReturnType<typeof startPrivateKafka>>;
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>;
  let mongo: Awaited<ReturnType<typeof startPrivateMongo>>;
  let s: TestStack;
  const extra: RunningService[] = [];
  const devices: Device[] = [];
  const USERS = 20;
  const ONLINE = 12;
  const RATE = 40;

  before(async () => {
    [kafka, redis, mongo] = await Promise.all([startPrivateKafka(), startPrivateRedis(), startPrivateMongo()]);
    const [collectorPort, p1, p2] = [await freePort(), await freePort(), await freePort()];
    s = await startStack({
      pushers: 0,
      env: {
        KAFKA_BROKERS: kafka.brokers,
        REDIS_URL: `redis://127.0.0.1:${redis.port}`,
        MONGO_URL: `mongodb://127.0.0.1:${mongo.port}/?directConnection=true`,
        COLLECTOR_PORT: String(collectorPort),
        COLLECTOR_OUTBOX_INTERVAL_MS: '500',
      },
    });
    s.env.PUSHER_PORT_1 = String(p1);
    s.env.PUSHER_PORT_2 = String(p2);
    await Promise.all([startPusher(1), startPusher(2)]);
  });
  after(async () => {
    for (const d of devices) d.close();
    await Promise.all(extra.map((svc) => svc.stop('SIGKILL')));
    await s?.stop().catch(() => undefined);
    await Promise.all([kafka?.dispose(), redis?.dispose(), mongo?.dispose()]);
  });

  /** Warnings and errors of a service's log, the last ones. */
  const notable = (out: string) =>
    out
      .split('\n')
      .filter((l) => /"level":"(warn|error|fatal)"/.test(l))
      .slice(-25)
      .join('\n');
  /** For each lost message: is its delivery stored, did its device ack or try it, where did the dispatcher and pushers say it went. */
  const lostState = async (lost: { n: number; user: string; id?: string }[]) => {
    const client = new MongoClient(s.env.MONGO_URL!);
    const r = new Redis(`redis://127.0.0.1:${redis.port}`, { keyPrefix: s.env.REDIS_KEY_PREFIX, maxRetriesPerRequest: 1 });
    try {
      const store = createDeliveryStore(client.db(s.env.MONGO_DB));
      const lines = [];
      for (const x of lost) {
        const st = await store.traceState(s.app, x.id!, [x.user], [{ user: x.user, device: 'phone' }]).catch((e: Error) => e.message);
        const tr = await readTrace(r, x.id!).then(
          (t) => t.fields,
          (e: Error) => e.message,
        );
        lines.push(`n=${x.n} ${x.user} ${x.id}: store ${JSON.stringify(st)} trace ${JSON.stringify(tr)}`);
      }
      return lines.join('\n');
    } finally {
      r.disconnect();
      await client.close();
    }
  };
  const pusherEnv = (n: number) => ({ PUSHER_HEARTBEAT_MS: '2000', ...s.env, NODE_ID: `${s.env.MONGO_DB}-p${n}`, PUSHER_PORT: s.env[`PUSHER_PORT_${n}`]! });
  const pushers = new Map<number, RunningService>();
  const startPusher = async (n: number) => {
    const p = await startService('pusher', pusherEnv(n));
    pushers.set(n, p);
    extra.push(p);
  };
  const restart = async (svc: RunningService, name: 'collector' | 'dispatcher', env: Record<string, string>) => {
    await svc.stop('SIGKILL');
    const next = await startService(name, env, { timeoutMs: 60_000 });
    extra.push(next);
    return next;
  };

  test(
    'every message answered 202 reaches its device once, through store, Redis and Kafka restarts and SIGKILLs',
    {
      timeout: 270_000,
    },
    async (t) => {
      const users = Array.from({ length: USERS }, (_, i) => `u${i}`);
      const tokenOf = (user: string) => async () => (await s.token(user, 'phone')).token;
      for (let i = 0; i < ONLINE; i++) {
        const n = (i % 2) + 1;
        devices.push(reconnectingDevice(users[i]!, () => `ws://127.0.0.1:${s.env[`PUSHER_PORT_${n}`]}/v1/ws`, tokenOf(users[i]!)));
      }
      await Promise.all(devices.map((d) => d.connected()));

      const lastErrors: string[] = [];
      const sent: { n: number; user: string; id?: string; status?: string; error?: string }[] = [];
      const inFlight: Promise<void>[] = [];
      let sending = true;
      const sender = (async () => {
        for (let n = 0; sending; n++) {
          const item: (typeof sent)[number] = { n, user: users[n % USERS]! };
          sent.push(item);
          inFlight.push(
            submitCarefully(
              `${s.collector.url}/v1/messages`,
              s.apiKey,
              { to: { users: [item.user] }, payload: { n }, persistent: true, idempotencyKey: `k-${n}` },
              { deadlineMs: 150_000, onError: (e) => lastErrors.push(e) },
            ).then((r) => {
              if ('id' in r) Object.assign(item, { id: r.id, status: r.status });
              else item.error = r.error;
            }),
          );
          await new Promise((r) => setTimeout(r, 1000 / RATE));
        }
      })();
      const collectorEnv = { ...s.env };
      let collector = s.collector;
      let dispatcher = s.dispatchers[0]!;
      // Where each fault began, in submissions: a lost message is placed between two of them.
      const phases: string[] = [];
      const phase = (name: string) => phases.push(`${new Date().toISOString().slice(11, 23)} n=${sent.length} ${name}`);
      const progress = async (more: number) => {
        const target = sent.filter((x) => x.id).length + more;
        const started = Date.now();
        await eventually(() => sent.filter((x) => x.id).length >= target, { timeoutMs: 60_000, intervalMs: 100, what: `${more} more messages accepted` }).then(
          () => {
            // A slow recovery that still made it is shown (with why), not hidden by the pass.
            const ms = Date.now() - started;
            phases.push(`  ${more} more accepted in ${ms} ms`);
            if (ms > 15_000)
              t.diagnostic(
                `slow recovery after ${phases.at(-2)}: ${ms} ms; last answers ${JSON.stringify(lastErrors.slice(-3))}\ncollector:\n${notable(collector.output())}`,
              );
          },
          async (err: Error) => {
            const ready = await fetch(`${collector.url}/readyz`).then(
              (r) => r.text(),
              (e: Error) => e.message,
            );
            throw new Error(
              `${err.message}; last answers: ${JSON.stringify(lastErrors.slice(-5))}\nphases:\n${phases.join('\n')}\ncollector /readyz: ${ready}\n` +
                `collector:\n${notable(collector.output())}\ndispatcher:\n${notable(dispatcher.output())}`,
            );
          },
        );
      };

      await progress(40);
      for (let round = 0; round < 3; round++) {
        phase(`store restart ${round + 1}`);
        await mongo.restart();
        await progress(40);
      }
      phase('collector SIGKILL');
      collector = await restart(collector, 'collector', collectorEnv);
      await progress(30);
      phase('dispatcher SIGKILL');
      dispatcher = await restart(dispatcher, 'dispatcher', { ...s.env, DISPATCHER_NODE_CACHE_MS: '200' });
      phase('pusher 1 SIGKILL');
      await pushers.get(1)!.stop('SIGKILL');
      await startPusher(1);
      await progress(30);
      phase('redis restart');
      await redis.restart();
      await progress(30);
      phase('kafka restart');
      await kafka.restart();
      await progress(30);
      phase('store restart 4 + pusher 2 SIGKILL');
      await mongo.restart();
      await pushers.get(2)!.stop('SIGKILL');
      await startPusher(2);
      await progress(30);
      phase('end');
      t.diagnostic(`phases:\n${phases.join('\n')}`);
      sending = false;
      await sender;
      await Promise.all(inFlight);

      const accepted = sent.filter((x) => x.id);
      const refused = sent.filter((x) => !x.id);
      assert.deepEqual(
        refused.map((x) => x.error),
        [],
        'a careful client gets every message accepted in the end',
      );
      // Offline users come online now: their messages wait in the store.
      for (let i = ONLINE; i < USERS; i++) devices.push(reconnectingDevice(users[i]!, () => `ws://127.0.0.1:${s.env.PUSHER_PORT_1}/v1/ws`, tokenOf(users[i]!)));
      const deviceOf = new Map(devices.map((d) => [d.user, d]));
      const missing = () => accepted.filter((x) => !deviceOf.get(x.user)!.shown.has(x.id!));
      await eventually(() => missing().length === 0, { timeoutMs: 60_000, intervalMs: 200, what: 'every accepted message on its device' }).catch(
        async (err: Error) => {
          const lost = missing();
          throw new Error(
            `${err.message}: ${lost.length} of ${accepted.length} lost (${lost.filter((x) => x.status === 'stored').length} answered "stored"): ${JSON.stringify(lost.slice(0, 10))}\n` +
              `phases:\n${phases.join('\n')}\n` +
              `state of the lost:\n${await lostState(lost.slice(0, 12))}\n` +
              `collector:\n${collector.output().slice(-3000)}\n` +
              `dispatcher:\n${notable(dispatcher.output())}\n` +
              [...pushers].map(([n, p]) => `pusher ${n}:\n${notable(p.output())}`).join('\n'),
          );
        },
      );
      for (const d of devices) {
        const ns = d.payloads.map((p) => (p as { n: number }).n);
        assert.equal(new Set(ns).size, ns.length, `${d.user}: a message shown twice under different ids`);
      }

      // Acks survive: a reconnect gets nothing that was already acked, only what comes next.
      for (const d of devices.slice(0, 4)) {
        await d.reconnect();
        const marker = await submitCarefully(`${s.collector.url}/v1/messages`, s.apiKey, {
          to: { users: [d.user] },
          payload: { marker: true },
          persistent: true,
        });
        assert.ok('id' in marker);
        await eventually(() => d.received().some((m) => m.id === marker.id), { timeoutMs: 30_000, what: `the marker on ${d.user}'s new connection` });
        assert.deepEqual(
          d.received().map((m) => m.id),
          [marker.id],
          `${d.user}: acked messages came again after a reconnect`,
        );
      }
      void dispatcher;
    },
  );
});
