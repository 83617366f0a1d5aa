import type { Logger } from '../../platform/logger.js';
import type { TraceWriter } from '../../store/traceRecords.js';
import { CLOSE } from '../../protocol/codes.js';
import { messageFrame } from '../../protocol/frames.js';
import { createCoalescer } from '../../store/coalesce.js';
import type { AttemptEntry } from '../../store/deliveries.js';
import type { DeliveryStore, PendingMessage, PendingRequest } from '../../store/deliveryStore.js';
import type { PusherConfig } from './config.js';
import type { Connection } from './connection.js';
import type { PusherMetrics } from './pusherMetrics.js';
import { writeResumed } from './writeResumed.js';

/** Connections whose resume reads (or attempt writes) go to the store in one call at most. */
const RESUME_BATCH = 500;

export interface ResumeDeps {
  config: PusherConfig;
  logger: Logger;
  store: Pick<DeliveryStore, 'pendingFor' | 'recordAttempts'>;
  stoppedTasks: (taskIds: string[]) => Promise<Set<string>>;
  metrics: PusherMetrics;
  trace?: TraceWriter;
}

/**
 * A device's stored messages, delivered on connect (after its route is written) page by page.
 * The resume reads and attempt writes of every connection in the same event-loop turn go to
 * the store together: a reconnect storm costs a few batched calls per turn, not ~5 per device.
 */
export class Resumer {
  /** Bytes a resume lets wait unsent before it waits for the socket: half the slow-consumer limit. */
  private readonly resumeHighWater: number;
  private readonly pendingPage: (req: PendingRequest) => Promise<PendingMessage[]>;
  private readonly recordAttempts: (page: AttemptEntry[]) => Promise<AttemptEntry[]>;
  /** Connections to read the store for again once their running resume ends. */
  private readonly catchUpAgain = new Set<Connection>();

  constructor(private readonly deps: ResumeDeps) {
    const { config } = deps;
    this.resumeHighWater = Math.max(1, Math.floor(config.maxBufferedBytes / 2));
    this.pendingPage = createCoalescer(
      (reqs: PendingRequest[]) => deps.store.pendingFor(reqs, { maxAttempts: config.maxDeliveryAttempts, stoppedTasks: deps.stoppedTasks }),
      RESUME_BATCH,
    );
    this.recordAttempts = createCoalescer(async (pages: AttemptEntry[][]) => {
      await deps.store.recordAttempts(pages.flat(), config.maxDeliveryAttempts);
      return pages.map((page) => page.filter((a) => a.attempt >= config.maxDeliveryAttempts));
    }, RESUME_BATCH);
  }

  async resume(conn: Connection): Promise<void> {
    const { config } = this.deps;
    let after = '';
    for (;;) {
      const page = await this.pendingPage({ app: conn.app, user: conn.user, device: conn.device, afterId: after, limit: config.offlinePageSize });
      if (conn.closed || page.length === 0) break;
      await this.writePage(conn, page);
      if (conn.closed) break;
      after = page.at(-1)!.id;
      if (page.length < config.offlinePageSize) break;
    }
    conn.finishResume();
    // Redis came back while this resume ran: read again, after the rewritten route.
    if (this.catchUpAgain.delete(conn) && !conn.closed && conn.beginResume()) await this.resume(conn);
  }

  /**
   * Every open connection reads the store again, as on connect. Used after Redis came back:
   * while it was gone (or empty after a restart without persistence) the dispatcher found
   * no route for these devices and left their persistent messages in the store, which a
   * connected device would otherwise not read before it reconnects.
   */
  catchUp(conns: Iterable<Connection>): void {
    for (const conn of conns) {
      if (conn.closed) continue;
      if (!conn.beginResume()) {
        this.catchUpAgain.add(conn);
        continue;
      }
      void this.resume(conn).catch((err: Error) => {
        this.deps.logger.warn({ err: err.message, app: conn.app, user: conn.user, device: conn.device }, 'catch-up read failed; closing');
        conn.close(CLOSE.SERVER_ERROR, 'could not load undelivered messages');
      });
    }
  }

  /**
   * Writes one page as the socket drains (half the slow-consumer limit may wait unsent); only
   * what reached the kernel counts as an attempt: a slow link is paced, not cut off, and a
   * message it never got is not parked for it.
   */
  private async writePage(conn: Connection, page: PendingMessage[]): Promise<void> {
    const { config, metrics } = this.deps;
    const expiry = new Map(page.map((m) => [m.id, m.expiresAt]));
    const frames = page.map((m) => ({
      id: m.id,
      frame: messageFrame({ id: m.id, payload: m.payload, persistent: true, createdAt: m.createdAt, expiresAt: m.expiresAt, collapseKey: m.collapseKey }),
    }));
    const written = new Set(
      await writeResumed(conn, frames, this.resumeHighWater, (id) => {
        conn.noteDelivered(id, expiry.get(id)!); // its ack is now this connection's to send
        metrics.delivered.inc({ path: 'resume' });
        this.deps.trace?.note(id, { kind: 'written', nodeId: config.nodeId, user: conn.user, device: conn.device, at: Date.now(), path: 'resume' });
      }),
    );
    const attempts = attemptsOf(conn, page, written);
    const parked = attempts.length > 0 ? await this.recordAttempts(attempts) : [];
    metrics.parked.inc(parked.length);
    for (const { id } of parked) this.deps.trace?.note(id, { kind: 'parked', user: conn.user, device: conn.device, at: Date.now() });
  }
}

/** The attempts a written page counts: one per message that reached the kernel. */
function attemptsOf(conn: Connection, page: PendingMessage[], written: Set<string>): AttemptEntry[] {
  return page
    .filter((m) => written.has(m.id))
    .map((m): AttemptEntry => ({
      app: conn.app,
      user: conn.user,
      device: conn.device,
      id: m.id,
      conn: conn.id,
      attempt: m.attempts + 1,
      expiresAt: m.expiresAt,
    }));
}

export function createResumer(deps: ResumeDeps): Resumer {
  return new Resumer(deps);
}
