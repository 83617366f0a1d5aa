import { MongoClient, type Db } from 'mongodb';

export type { Db };

export interface MongoHandle {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

/** Connects lazily: the driver retries server selection itself, so a late MongoDB only delays readiness. */
export function createMongo(url: string, dbName: string, appName: string): MongoHandle {
  const client = new MongoClient(url, {
    appName,
    serverSelectionTimeoutMS: 3000,
    connectTimeoutMS: 2000,
    maxPoolSize: 20,
  });
  return { client, db: client.db(dbName), close: () => client.close() };
}
