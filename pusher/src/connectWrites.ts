import type { Redis } from 'ioredis';
import { addRouteCommands, type RouteOwner } from '../../store/routeTable.js';
import { lastNodeKey } from '../../store/nodeRegistry.js';
import { kickChannel } from '../../store/kicks.js';
import type { Connection } from './connection.js';
import { EPOCH_TTL_SECONDS, epochKey } from './presence.js';

/** How long the user's last node is remembered (auth lists it first). */
const LAST_NODE_TTL_SECONDS = 86_400;

export interface ConnectWritesOptions {
  redis: Redis;
  owner: RouteOwner;
  routeTtlMs: number;
  /** Connections written in one pipeline at most. Default 500. */
  maxBatch?: number;
  /** Called once per batch with the connections that are written and still open (their ONLINE is due). */
  onWritten?: (conns: Connection[]) => void;
}

const NO_REPLY: [Error, unknown] = [new Error('no reply from Redis'), undefined];

/**
 * The Redis writes of new connections, coalesced: every connection opened in
 * the same event-loop turn gets its route, the user's last node, its presence
 * epoch and (single-device apps) the kick of the user's other connections in
 * one pipeline, instead of three to four round trips each. `add` resolves with
 * the connections of the batch whose route or kick could not be written
 * (usually none); `presenceEpoch` is set on the others (left 0 if the counter
 * failed). A connection closed before its batch goes out is skipped: nothing
 * is written for it, so its close has nothing to undo; one closed while the
 * batch is out still gets its epoch, and `onWritten` (presence.ts) publishes
 * its ONLINE and OFFLINE together, since its close saw no epoch yet.
 */
export function createConnectWrites({ redis, owner, routeTtlMs, maxBatch = 500, onWritten }: ConnectWritesOptions) {
  let queue: Connection[] = [];
  let kicks: boolean[] = [];
  let settle: { promise: Promise<Set<Connection>>; resolve: (failed: Set<Connection>) => void } | undefined;
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    if (queue.length === 0) return; // flushed early, at maxBatch
    const batch = queue;
    const kickOthers = kicks;
    const done = settle!;
    queue = [];
    kicks = [];
    settle = undefined;
    const failed = new Set<Connection>();
    const open: Connection[] = [];
    const expiresAt = Date.now() + routeTtlMs;
    const pipeline = redis.pipeline();
    for (let i = 0; i < batch.length; i++) {
      const c = batch[i]!;
      if (c.closed) continue;
      open.push(c);
      addRouteCommands(pipeline, owner, { app: c.app, user: c.user, device: c.device, connId: c.id }, routeTtlMs, expiresAt);
      pipeline.set(lastNodeKey(c.app, c.user), owner.id, 'EX', LAST_NODE_TTL_SECONDS);
      pipeline.incr(epochKey(c));
      pipeline.expire(epochKey(c), EPOCH_TTL_SECONDS);
      if (kickOthers[i])
        pipeline.publish(kickChannel(redis), JSON.stringify({ app: c.app, user: c.user, exceptConn: c.id, reason: 'signed in on another device' }));
    }
    if (open.length === 0) return done.resolve(failed);
    pipeline.exec().then(
      (results) => {
        // Per connection: HSET, PEXPIRE, SET, INCR, EXPIRE and maybe PUBLISH, in queue order.
        let r = 0;
        for (let i = 0, j = 0; i < batch.length; i++) {
          const c = batch[i]!;
          if (c !== open[j]) continue;
          j++;
          const [routeErr] = results?.[r] ?? NO_REPLY;
          const [epochErr, epoch] = results?.[r + 3] ?? NO_REPLY;
          const [kickErr] = kickOthers[i] ? (results?.[r + 5] ?? NO_REPLY) : [null];
          r += kickOthers[i] ? 6 : 5;
          if (routeErr || kickErr) failed.add(c);
          else if (!epochErr) c.presenceEpoch = Number(epoch);
        }
        onWritten?.(open.filter((c) => c.presenceEpoch > 0));
        done.resolve(failed);
      },
      () => {
        for (const c of open) failed.add(c);
        done.resolve(failed);
      },
    );
  };

  return {
    /** Queues a new connection's writes; resolves once its batch is written, with the batch's failures. */
    add(conn: Connection, kickOtherDevices: boolean): Promise<Set<Connection>> {
      if (!settle) {
        let resolve!: (failed: Set<Connection>) => void;
        const promise = new Promise<Set<Connection>>((r) => (resolve = r));
        settle = { promise, resolve };
      }
      const { promise } = settle;
      queue.push(conn);
      kicks.push(kickOtherDevices);
      if (queue.length >= maxBatch) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
      return promise;
    },
  };
}
