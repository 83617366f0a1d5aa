import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { MongoNetworkError } from 'mongodb';
import { createMongo } from '../platform/mongo.js';
import { stack } from './support/env.js';
import { eventually } from './support/eventually.js';

/** The driver's server for the one address (internal layout, as platform/mongo.ts reads it). */
type Server = {
  description: { type: string };
  monitor: { connection: { command: (...args: unknown[]) => Promise<unknown> } | null };
  handleError(err: Error): void;
};

test('a heartbeat that never finishes gets its monitor restarted: the server, lost meanwhile, is found again', { timeout: 40_000 }, async () => {
  const lines: { msg: string; level: string }[] = [];
  const logger = pino({ level: 'warn', formatters: { level: (label) => ({ level: label }) } }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  const mongo = createMongo(stack.mongoUrl, 'push_monitor_test', 'test-monitor', logger);
  try {
    await mongo.db.command({ ping: 1 });
    const servers = (mongo.client as unknown as { topology: { s: { servers: Map<string, Server> } } }).topology.s.servers;
    const server = [...servers.values()][0]!;
    await eventually(() => server.monitor.connection, { timeoutMs: 10_000, what: 'the monitor connected' });
    // What the driver does when the store closes the monitor's connection as a hello is written
    // (a restart): the check never ends, and the monitor checks nothing again.
    server.monitor.connection!.command = () => new Promise(() => undefined);
    // An operation meets a closed connection: the server is Unknown, the pool paused until a heartbeat succeeds.
    server.handleError(new MongoNetworkError('connection 1 to the store closed'));
    assert.equal(server.description.type, 'Unknown');
    const started = Date.now();
    await eventually(
      () =>
        mongo.db.command({ ping: 1 }).then(
          () => true,
          () => false,
        ),
      { timeoutMs: 25_000, intervalMs: 200, what: 'a ping answered again' },
    );
    assert.ok(Date.now() - started < 15_000, `found again after ${Date.now() - started} ms`);
    assert.ok(
      lines.some((l) => l.msg === 'mongo heartbeat never finished; restarting the server monitor'),
      JSON.stringify(lines),
    );
  } finally {
    await mongo.close();
  }
});
