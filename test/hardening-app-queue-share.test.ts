import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createAppStore } from '../store/apps.js';
import { connectClient, startStack, type TestClient, type TestStack, wsOf } from './support/stack.js';

/**
 * The collector's publish queue (records waiting for Kafka) is shared by every app. It
 * holds 20,000 records, so two 10,000-user fan-outs of one app filled it, and every other
 * app's messages were refused (503 OVERLOADED) until Kafka caught up. One app now holds at
 * most its share (COLLECTOR_APP_QUEUE_SHARE, 50%) while it has anything else waiting.
 */
describe("one app's fan-outs cannot fill the publish queue for the other apps", () => {
  let s: TestStack;
  const other = { app: '', apiKey: '' };
  before(async () => {
    s = await startStack();
    other.app = `${s.app}-other`;
    other.apiKey = `${s.apiKey}-other`;
    await createAppStore({ db: s.mongo.db(s.env.MONGO_DB!) }).upsert({
      id: other.app,
      apiKeys: [other.apiKey],
      allowedOrigins: ['*'],
      deviceMode: 'coexist',
      openGroups: true,
    });
  });
  after(async () => {
    await s?.stop();
  });

  const post = async (apiKey: string, body: unknown) => {
    const res = await fetch(`${s.collector.url}/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  };

  test('a burst of 10,000-user messages from one app: the other app gets every message in, and every 202 is delivered', { timeout: 120_000 }, async () => {
    // Recipient 0 of every big message is online, so what the heavy app was told is checked too.
    const heavyClient: TestClient = await connectClient(wsOf(s.pushers[0]!.url), (await s.token('big-0', 'd')).token);
    const tokenRes = await fetch(`${s.auth.url}/v1/tokens`, {
      method: 'POST',
      headers: { authorization: `Bearer ${other.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({ userId: 'small', deviceId: 'd' }),
    });
    const otherClient = await connectClient(wsOf(s.pushers[0]!.url), ((await tokenRes.json()) as { token: string }).token);

    const users = Array.from({ length: 10_000 }, (_, i) => `big-${i}`);
    let bursting = true;
    // Three rounds of four at once, 16 MB of records each: two of them filled the whole queue.
    // Transient: 10,000 inbox writes per persistent message would make this a store benchmark.
    const heavy = (async () => {
      const all: { status: number; body: any }[] = [];
      for (let round = 0; round < 3; round++) {
        const pad = 'x'.repeat(1000);
        all.push(...(await Promise.all(Array.from({ length: 4 }, (_, i) => post(s.apiKey, { to: { users }, payload: { round, i, pad }, persistent: false })))));
      }
      return all;
    })().finally(() => (bursting = false));
    // The other app sends small transient messages all through the burst, two at a time.
    const small: { status: number; body: any }[] = [];
    await Promise.all(
      [0, 1].map(async (lane) => {
        for (let i = 0; bursting || i < 5; i++) small.push(await post(other.apiKey, { to: { users: ['small'] }, payload: { lane, i }, persistent: false }));
      }),
    );
    const answers = await heavy;

    const refused = small.filter((r) => r.status !== 202);
    assert.deepEqual(refused.slice(0, 3), [], `${refused.length} of ${small.length} of the other app's messages were refused`);
    // The heavy app was held to its share: some of its transient messages were refused, clearly.
    for (const a of answers) assert.ok(a.status === 202 || (a.status === 503 && a.body.error.code === 'OVERLOADED'), JSON.stringify(a.body));
    const overloaded = answers.filter((a) => a.status === 503);
    for (const a of overloaded) assert.deepEqual(a.body.error.details, { owner: s.app });

    // Every 202 reaches its online recipient.
    await otherClient.waitFor(small.length, 30_000);
    const accepted = answers.filter((a) => a.status === 202).map((a) => a.body.id as string);
    assert.ok(accepted.length >= 1);
    await heavyClient.waitFor(accepted.length, 60_000);
    assert.deepEqual(new Set(heavyClient.messages.map((m) => m.id)), new Set(accepted));
    await Promise.all([heavyClient.close(), otherClient.close()]);
  });
});
