/**
 * The raw-write limit next to our broadcast, in the same run: the limit
 * scenario's bare `ws` server (bench/limit/wsServer.ts) with its own N
 * clients, broadcasting one pre-built frame written to each raw socket. The
 * broadcast scenario alternates it with ours, so both see the same load on
 * this shared machine and their ratio is read pair by pair.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../test/support/services.js';
import { forkTs, nextMessage, stopGroup } from '../lib/procs.js';
import { ClientPool, CLIENTS_PER_PROCESS } from '../peers/clients.js';

const wsServerFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '../limit/wsServer.ts');

/** One bare ws process holds at most this many (the open-file limit is 20,000 per process). */
export const RAW_LIMIT_MAX_CLIENTS = 2 * CLIENTS_PER_PROCESS;

/** Client processes the raw limit's N clients use (as ClientPool.start picks them); ours get as many, so neither side's clients are the bottleneck alone. */
export const rawClientProcesses = (n: number) => Math.max(2, Math.ceil(n / CLIENTS_PER_PROCESS));

export async function startRawLimit(n: number, log: (l: string) => void) {
  const port = await freePort();
  const server = forkTs(wsServerFile, [], { env: { ...process.env, PORT: String(port) } });
  let pool: ClientPool | undefined;
  try {
    await nextMessage(server, (m) => m.ev === 'ready', 30_000, 'bare ws server start');
    pool = await ClientPool.start(n);
    const conn = await pool.connect({ kind: 'bare', endpoints: [`ws://127.0.0.1:${port}`], n, concurrency: 100 });
    if (conn.ok === 0) throw new Error(`no bare ws client connected: ${conn.firstError}`);
    log(`raw limit: ${conn.ok}/${n} clients on a bare ws server`);
  } catch (err) {
    await pool?.close().catch(() => undefined);
    await stopGroup(server, 'SIGTERM', 3000);
    throw err;
  }
  const clients = pool;
  let run = 0;
  return {
    /** One raw-frame broadcast: ms from the start of the write loop until the last client had it (null: not all did). */
    async broadcast(): Promise<{ ms100: number | null; received: number }> {
      run++;
      await clients.reset(run);
      server.send({ cmd: 'broadcast', mode: 'raw', run });
      const { clients: n } = await nextMessage<{ clients: number }>(server, (m) => m.ev === 'broadcast', 30_000, 'raw broadcast');
      await clients.waitFor((c) => c.broadcast >= n, { idleMs: 3000, timeoutMs: 30_000 });
      const a = (await clients.collect()).arrivals;
      return { ms100: a.length >= n ? a[a.length - 1]! : null, received: a.length };
    },
    async close(): Promise<void> {
      await clients.close().catch(() => undefined);
      await stopGroup(server, 'SIGTERM', 3000);
    },
  };
}
