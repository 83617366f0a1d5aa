import { MongoClient, type Collection, type Db } from 'mongodb';
import type { Logger } from './logger.js';

export type { Db };

export interface MongoHandle {
  client: MongoClient;
  db: Db;
  close(): Promise<void>;
}

/** The driver's pool counters (not public API: read defensively, for logs only). */
export function poolStats(client: MongoClient): Record<string, unknown>[] {
  const servers = (client as unknown as { topology?: { s?: { servers?: Map<string, { pool?: Record<string, unknown> }> } } }).topology?.s?.servers;
  if (!servers) return [];
  return [...servers].map(([address, server]) => {
    const p = server.pool ?? {};
    return {
      address,
      total: p.totalConnectionCount,
      available: p.availableConnectionCount,
      pending: p.pendingConnectionCount,
      checkedOut: p.currentCheckedOutCount,
      waiting: p.waitQueueSize,
    };
  });
}

/**
 * Logs what the driver sees of the store: heartbeats failing, the pool cleared
 * and ready again, check-outs that fail (with the pool's counters), and with
 * PUSH_MONGO_TRACE=1 every command still running after 3 s.
 */
function watchClient(client: MongoClient, logger: Logger): void {
  const lastLog = new Map<string, number>();
  const often = (kind: string, ms = 1000) => {
    const now = Date.now();
    if (now - (lastLog.get(kind) ?? 0) < ms) return false;
    lastLog.set(kind, now);
    return true;
  };
  let heartbeatFailing = false;
  client.on('serverHeartbeatFailed', (e) => {
    if (!heartbeatFailing || often('heartbeat', 5000))
      logger.warn({ address: e.connectionId, err: e.failure?.message, ms: e.duration }, 'mongo heartbeat failed');
    heartbeatFailing = true;
  });
  client.on('serverHeartbeatSucceeded', () => {
    if (heartbeatFailing) logger.warn({ pool: poolStats(client) }, 'mongo heartbeat succeeds again');
    heartbeatFailing = false;
  });
  client.on('connectionPoolCleared', (e) =>
    logger.warn(
      { address: e.address, interrupt: (e as { interruptInUseConnections?: boolean }).interruptInUseConnections, pool: poolStats(client) },
      'mongo pool cleared',
    ),
  );
  client.on('connectionPoolReady', (e) => logger.info({ address: e.address, pool: poolStats(client) }, 'mongo pool ready'));
  client.on('connectionCheckOutFailed', (e) => {
    if (often('checkout'))
      logger.warn({ reason: e.reason, err: (e as { error?: Error }).error?.message, pool: poolStats(client) }, 'mongo connection check-out failed');
  });
  client.on('connectionClosed', (e) => {
    if (e.reason !== 'stale' && e.reason !== 'poolClosed' && often(`closed-${e.reason}`))
      logger.warn({ reason: e.reason, err: (e as { error?: Error }).error?.message }, 'mongo connection closed');
  });
  client.on('serverDescriptionChanged', (e) => {
    if (e.previousDescription.type !== e.newDescription.type)
      logger[e.newDescription.type === 'Unknown' ? 'warn' : 'info'](
        { address: e.address, from: e.previousDescription.type, to: e.newDescription.type, err: e.newDescription.error?.message },
        'mongo server changed',
      );
  });
  if (process.env.PUSH_MONGO_TRACE === '1') {
    const running = new Map<number, { name: string; at: number; conn: unknown }>();
    client.on('commandStarted', (e) => running.set(e.requestId, { name: e.commandName, at: Date.now(), conn: e.connectionId }));
    client.on('commandSucceeded', (e) => running.delete(e.requestId));
    client.on('commandFailed', (e) => {
      const r = running.get(e.requestId);
      running.delete(e.requestId);
      if (r && Date.now() - r.at > 3000)
        logger.warn({ command: r.name, ms: Date.now() - r.at, err: e.failure?.message }, 'mongo command failed after a long wait');
    });
    setInterval(() => {
      const old = [...running.values()].filter((r) => Date.now() - r.at > 3000);
      if (old.length > 0)
        logger.warn(
          { n: old.length, oldest: old.slice(0, 5).map((r) => ({ command: r.name, ms: Date.now() - r.at, conn: r.conn })), pool: poolStats(client) },
          'mongo commands running for over 3 s',
        );
    }, 2000).unref();
  }
}

/** The driver's servers (not public API: read defensively). */
type DriverServer = { description?: { type?: string }; monitor?: DriverMonitor };
type DriverMonitor = { s?: { state?: string }; connection?: DriverConnection | null; close?: () => void; connect?: () => void };
type DriverConnection = { id?: unknown; closed?: boolean; dataEvents?: unknown; socket?: { destroyed?: boolean; writableNeedDrain?: boolean } };
function driverServers(client: MongoClient): DriverServer[] {
  const servers = (client as unknown as { topology?: { s?: { servers?: Map<string, DriverServer> } } }).topology?.s?.servers;
  return servers ? [...servers.values()] : [];
}

/**
 * A server monitor whose check never ends is restarted. The driver (6.x) can lose a
 * heartbeat: when the server closes the monitor's connection just as a `hello` is being
 * written (a store restart), the write waits for a `drain` that a destroyed socket never
 * emits, and neither the socket timeout (the socket is gone) nor the connection's cleanup
 * (no read is waiting yet) settles it. The monitor then checks nothing ever again; the
 * next operation that meets a closed connection marks the server Unknown and pauses the
 * pool, and only a heartbeat could make it usable again: every operation fails server
 * selection for good. A polling check is bounded by connectTimeoutMS, a streaming one by
 * heartbeatFrequencyMS more, so one outstanding for longer than that plus a margin is stuck.
 */
function watchHeartbeats(
  client: MongoClient,
  logger: Logger | undefined,
  { connectTimeoutMS, heartbeatFrequencyMS }: { connectTimeoutMS: number; heartbeatFrequencyMS: number },
): NodeJS.Timeout {
  const outstanding = new Map<string, { at: number; awaited: boolean }>();
  client.on('serverHeartbeatStarted', (e) => outstanding.set(e.connectionId, { at: Date.now(), awaited: e.awaited }));
  client.on('serverHeartbeatSucceeded', (e) => outstanding.delete(e.connectionId));
  client.on('serverHeartbeatFailed', (e) => outstanding.delete(e.connectionId));
  const timer = setInterval(() => {
    for (const [address, hb] of outstanding) {
      const limit = connectTimeoutMS + (hb.awaited ? heartbeatFrequencyMS : 0) + 2000;
      const ms = Date.now() - hb.at;
      if (ms <= limit) continue;
      outstanding.delete(address);
      const server = driverServers(client).find((sv) => (sv as { description?: { address?: string } }).description?.address === address);
      const monitor = server?.monitor;
      const conn = monitor?.connection;
      const state = {
        address,
        ms,
        type: server?.description?.type,
        monitor: monitor?.s?.state,
        connection: conn
          ? { closed: conn.closed, reading: conn.dataEvents != null, socketDestroyed: conn.socket?.destroyed, needDrain: conn.socket?.writableNeedDrain }
          : null,
      };
      if (typeof monitor?.close === 'function' && typeof monitor.connect === 'function') {
        logger?.warn(state, 'mongo heartbeat never finished; restarting the server monitor');
        monitor.close();
        monitor.connect();
      } else {
        // Not the driver's layout this was written against: reconnect the whole client instead.
        logger?.warn(state, 'mongo heartbeat never finished; reconnecting the client');
        void client
          .close()
          .then(() => client.connect())
          .catch((err: Error) => logger?.warn({ err: err.message }, 'mongo reconnect failed; operations retry it'));
      }
    }
  }, 1000);
  timer.unref();
  return timer;
}

/** No reply for this long on a connection: the operation fails and the connection is dropped. */
export const SOCKET_TIMEOUT_MS = 20_000;

/** Connects lazily: the driver retries server selection itself, so a late MongoDB only delays readiness. */
export function createMongo(url: string, dbName: string, appName: string, logger?: Logger): MongoHandle {
  const connectTimeoutMS = 2000;
  const heartbeatFrequencyMS = 10_000;
  const client = new MongoClient(url, {
    appName,
    serverSelectionTimeoutMS: 3000,
    connectTimeoutMS,
    heartbeatFrequencyMS,
    // A reply that never comes (a server that hangs on a connection) ends the operation and
    // drops the connection instead of holding a pool slot forever. Longer than any store
    // operation the services make.
    socketTimeoutMS: SOCKET_TIMEOUT_MS,
    maxPoolSize: 20,
    ...(process.env.PUSH_MONGO_TRACE === '1' ? { monitorCommands: true } : {}),
  });
  if (logger) watchClient(client, logger);
  const watchdog = watchHeartbeats(client, logger, { connectTimeoutMS, heartbeatFrequencyMS });
  return {
    client,
    db: client.db(dbName),
    close: () => {
      clearInterval(watchdog);
      return client.close();
    },
  };
}

/**
 * Whether a string can be stored and matched at all. PostgreSQL (under FerretDB)
 * cannot hold U+0000 in text: an insert carrying one fails, and so does a find
 * whose equality filter on an indexed field carries one. No stored value has
 * one, so a filter with one matches nothing; callers answer that without asking.
 */
export const storable = (s: string): boolean => !s.includes('\u0000');

/** `s` with every U+0000 replaced by U+FFFD, for free text (reasons, messages) that must be stored. */
export const storableText = (s: string): string => (storable(s) ? s : s.replaceAll('\u0000', '\ufffd'));

/**
 * Creates a TTL index on `field` (documents expire at the date it holds); resolves
 * false when the server lacks TTL indexes (FerretDB 1.x: NotImplemented), so the
 * caller sweeps expired documents itself.
 */
export async function ensureExpiryIndex(coll: Pick<Collection, 'createIndex'>, field: string): Promise<boolean> {
  try {
    await coll.createIndex({ [field]: 1 }, { expireAfterSeconds: 0 });
    return true;
  } catch (err) {
    if ((err as { code?: number }).code !== 238) throw err;
    return false;
  }
}

/**
 * The indexes of the documents an unordered `insertMany` found already present (duplicate `_id`),
 * when that is all that went wrong; rethrows anything else. A lost connection can surface as a
 * bulk write error with an empty `writeErrors` list: that is a failure, never "all inserted".
 */
export function duplicateIndexes(err: unknown, attempted: number): number[] {
  const { writeErrors, insertedCount } = err as { writeErrors?: { index: number; code: number }[]; insertedCount?: number };
  if (!Array.isArray(writeErrors) || writeErrors.length === 0 || writeErrors.some((w) => w.code !== 11000)) throw err;
  if (typeof insertedCount === 'number' && insertedCount + writeErrors.length !== attempted) throw err;
  return writeErrors.map((w) => w.index);
}
