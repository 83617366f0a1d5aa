import { after, before } from 'node:test';
import { MongoClient, type Db, type MongoClientOptions } from 'mongodb';
import { stack as infra, uniqueId } from './env.js';

/** A database of the calling suite's own and its client; both are there from its `before` hooks on. */
export interface TestDatabase {
  readonly client: MongoClient;
  readonly db: Db;
}

/**
 * A database of its own on the shared MongoDB, named after `prefix` and made
 * unique, for the tests of the calling suite (or file): opened (a client with
 * `options`) before them, dropped and its client closed after them. Call it
 * before the suite's own `before` hooks that use it.
 */
export function testDatabase(prefix: string, options?: MongoClientOptions): TestDatabase {
  let client: MongoClient;
  let db: Db;
  before(async () => {
    client = new MongoClient(infra.mongoUrl, options);
    db = client.db(uniqueId(prefix).replace(/[^A-Za-z0-9]/g, ''));
  });
  after(async () => {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  });
  return {
    get client() {
      return client;
    },
    get db() {
      return db;
    },
  };
}
