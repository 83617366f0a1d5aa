/**
 * One writer process of the delivery-store concurrency test: stores every
 * id's delivery for one user (as every other worker does), acks its share of
 * the ids and records attempts for every id, for one device, in small
 * batches as fast as it can. Arguments: mongoUrl dbName app user device
 * worker workers ids(comma-separated).
 */
import { MongoClient } from 'mongodb';
import { createDeliveryStore } from '../../store/deliveryStore.js';

const [url, dbName, app, user, device, worker, workers, list] = process.argv.slice(2) as [string, string, string, string, string, string, string, string];
const client = new MongoClient(url);
const store = createDeliveryStore(client.db(dbName));
const ids = list.split(',');
const mine = ids.filter((_, i) => i % Number(workers) === Number(worker));
const expiresAt = Date.now() + 600_000;
for (let i = 0; i < ids.length; i += 10) {
  const part = ids.slice(i, i + 10);
  await Promise.all([
    store.appendDeliveries(part.map((m) => ({ app, user, m, e: expiresAt, p: `p-${m}`, c: Date.now() }))),
    store.ack([
      {
        app,
        user,
        device,
        ids: mine.slice(i / Number(workers), i / Number(workers) + 10),
        expiresAt: mine.slice(i / Number(workers), i / Number(workers) + 10).map(() => expiresAt),
      },
    ]),
    // Every worker writes an attempt of every id by connection `shared` (twice, as a retried flush would) and one by its
    // own connection: the same connection's attempt collapses, distinct connections' attempts count.
    store.recordAttempts(
      part.flatMap((id) => ['shared', 'shared', `w${worker}`].map((conn) => ({ app, user, device, id, conn, attempt: 1, expiresAt }))),
      100,
    ),
  ]);
}
await client.close();
