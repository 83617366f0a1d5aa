import { after, before } from 'node:test';
import { MongoClient, type Db } from 'mongodb';
import { stack as infra, uniqueId } from './env.js';

/** A database of the calling suite's own; `db` is there from its `before` hooks on. */
export interface TestDatabase {
  readonly db: Db;
}

/**
 * A database of its own on the shared MongoDB, named after `prefix` and made
 * unique, for the tests of the calling suite (or file): opened before them,
 * dropped and its client closed after them.
 */
export function testDatabase(prefix: string): TestDatabase {
  let client: MongoClient;
  let db: Db;
  before(async () => {
    client = new MongoClient(infra.mongoUrl);
    db = client.db(uniqueId(prefix).replace(/[^A-Za-z0-9]/g, ''));
  });
  after(async () => {
    await db.dropDatabase().catch(() => undefined);
    await client.close();
  });
  return {
    get db() {
      return db;
    },
  };
}
