import type { Db } from 'mongodb';
import { duplicateIndexes } from '../common/src/mongo.js';
import { idTime } from '../common/src/ids.js';
import { ackId, attemptId, deviceKey } from './keys.js';
import type { Limiter } from './limiter.js';

/**
 * Per-device delivery state, insert-only:
 *
 *   acks      one document per (device, message) the device acknowledged
 *   attempts  one document per (device, message, attempt number): a delivery
 *             on connect; the count of a message's documents is its attempts
 *
 * Both carry the device key `d` (indexed; a device's state is one equality
 * find each) and an expiry `e`. Writing an ack or an attempt twice inserts
 * the same `_id` and is ignored, so concurrent writers (two sockets of a
 * device, two pushers, a retried flush) cannot lose or double anything, and
 * a tick's acks or attempts of every connection go in one insertMany.
 */
interface AckDoc {
  _id: string;
  d: string;
  m: string;
  e: Date;
}
type AttemptDoc = AckDoc;

export interface AckBatchEntry {
  app: string;
  user: string;
  device: string;
  ids: string[];
}

export interface AttemptEntry {
  app: string;
  user: string;
  device: string;
  /** message id */
  id: string;
  /** this attempt's number, from 1 (the attempts read with the message, plus one) */
  attempt: number;
  /** the message's expiry, ms since epoch: the attempt is forgotten with it */
  expiresAt: number;
}

export interface DeviceRef {
  app: string;
  user: string;
  device: string;
}

export interface DeviceState {
  acked: Set<string>;
  /** attempts on connect per message id */
  attempts: Map<string, number>;
}

/**
 * How long an ack is kept: past its message's longest possible life (the id
 * carries the creation time; 30 days is the longest TTL), it can no longer
 * matter. An id that is not time-ordered is kept that long from now.
 */
const ACK_KEEP_MS = 31 * 86_400_000;
const INSERT_CHUNK = 1000;

export function createDevices(db: Db, limit: Limiter) {
  const acks = db.collection<AckDoc>('acks');
  const attempts = db.collection<AttemptDoc>('attempts');

  /** Unordered inserts in chunks; duplicates ignored, anything else throws. */
  const insertAll = async <T extends AckDoc>(col: typeof acks, docs: T[]) => {
    const chunks: T[][] = [];
    for (let i = 0; i < docs.length; i += INSERT_CHUNK) chunks.push(docs.slice(i, i + INSERT_CHUNK));
    await Promise.all(
      chunks.map((part) =>
        limit(async () => {
          try {
            await col.insertMany(part, { ordered: false });
          } catch (err) {
            duplicateIndexes(err, part.length);
          }
        }),
      ),
    );
  };

  return {
    acks,
    attempts,

    /** Stores the acks of many devices in one go (one insertMany per INSERT_CHUNK ids). */
    async ack(batch: AckBatchEntry[], now = Date.now()): Promise<void> {
      const docs: AckDoc[] = [];
      for (const { app, user, device, ids } of batch) {
        const d = deviceKey(app, user, device);
        for (const m of new Set(ids)) {
          const born = idTime(m);
          docs.push({ _id: ackId(app, user, device, m), d, m, e: new Date((Number.isNaN(born) ? now : Math.min(born, now)) + ACK_KEEP_MS) });
        }
      }
      if (docs.length > 0) await insertAll(acks, docs);
    },

    /** Stores one delivery attempt per entry; an attempt number written before is ignored. */
    async recordAttempts(batch: AttemptEntry[]): Promise<void> {
      const docs = batch.map(
        (a): AttemptDoc => ({ _id: attemptId(a.app, a.user, a.device, a.id, a.attempt), d: deviceKey(a.app, a.user, a.device), m: a.id, e: new Date(a.expiresAt) }),
      );
      if (docs.length > 0) await insertAll(attempts, docs);
    },

    /** Acks and attempt counts of each device, in order: two indexed equality finds per device. */
    async stateOf(devices: DeviceRef[]): Promise<DeviceState[]> {
      return Promise.all(
        devices.map(async ({ app, user, device }) => {
          const d = deviceKey(app, user, device);
          const [a, t] = await Promise.all([
            limit(() => acks.find({ d }, { projection: { m: 1 } }).toArray()),
            limit(() => attempts.find({ d }, { projection: { m: 1 } }).toArray()),
          ]);
          const counts = new Map<string, number>();
          for (const { m } of t) counts.set(m, (counts.get(m) ?? 0) + 1);
          return { acked: new Set(a.map((x) => x.m)), attempts: counts };
        }),
      );
    },

    /** Whether the device acked the message (one lookup by `_id`). */
    async acked(app: string, user: string, device: string, msgId: string): Promise<boolean> {
      return (await acks.findOne({ _id: ackId(app, user, device, msgId) }, { projection: { _id: 1 } })) !== null;
    },
  };
}

export type Devices = ReturnType<typeof createDevices>;
