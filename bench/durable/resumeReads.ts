/**
 * Resume reads/s of the delivery store alone: MongoDB vs the hot index (store/hotIndex.ts), same
 * data (N users x 2 stored messages), batches of 500 as the pusher's coalescer sends them.
 *   npx tsx bench/durable/resumeReads.ts [users=3000]
 * Uses the shared MongoDB (its own database) and Redis (its own prefix), and removes both.
 */
import { MongoClient } from 'mongodb';
import { Redis } from 'ioredis';
import { createDeliveryStore } from '../../store/deliveryStore.js';
import { newId } from '../../protocol/ids.js';
import { stack as infra, uniqueId } from '../../test/support/env.js';

const USERS = Number(process.argv[2] ?? 3000);
const BATCH = 500;
const id = uniqueId('hotbench').replace(/[^A-Za-z0-9]/g, '');
const client = new MongoClient(infra.mongoUrl);
const db = client.db(id);
const redis = new Redis(infra.redisUrl, { keyPrefix: `${id}:` });
const cold = createDeliveryStore(db);
const hot = createDeliveryStore(db, { redis });
await hot.ensureIndexes();
const app = 'a';
const exp = Date.now() + 3_600_000;
const deliveries = [];
for (let u = 0; u < USERS; u++) for (let k = 0; k < 2; k++) deliveries.push({ app, user: `u${u}`, m: newId(), e: exp, p: `{"n":${k}}`, c: Date.now() });
await hot.appendDeliveries(deliveries);
const reqs = Array.from({ length: USERS }, (_, u) => ({ app, user: `u${u}`, device: 'd', afterId: '', limit: 200 }));
const run = async (label: string, store: typeof hot) => {
  const t0 = performance.now();
  let n = 0;
  // Two batches in flight, as two pushers' coalescers would.
  for (let i = 0; i < reqs.length; i += 2 * BATCH) {
    const res = await Promise.all([
      store.pendingFor(reqs.slice(i, i + BATCH), { maxAttempts: 10 }),
      store.pendingFor(reqs.slice(i + BATCH, i + 2 * BATCH), { maxAttempts: 10 }),
    ]);
    n += res.flat().reduce((a, p) => a + p.length, 0);
  }
  const s = (performance.now() - t0) / 1000;
  console.log(`${label}: ${USERS} resumes in ${s.toFixed(2)} s = ${Math.round(USERS / s)}/s (${n} messages, hot hits so far ${hot.hotHits()})`);
};
await run('MongoDB only', cold);
await run('hot index, cold (loads + installs)', hot);
await run('hot index, warm', hot);
await run('MongoDB only (again)', cold);
await run('hot index, warm (again)', hot);
hot.close();
await db.dropDatabase();
// SCAN's pattern is not prefixed by ioredis; DEL's keys are.
for await (const keys of redis.scanStream({ match: `${id}:*`, count: 1000 }) as AsyncIterable<string[]>) {
  if (keys.length > 0) await redis.del(...keys.map((k) => k.slice(id.length + 1)));
}
await client.close();
redis.disconnect();
