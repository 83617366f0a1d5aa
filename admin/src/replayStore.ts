import type { Db } from 'mongodb';
import type { ReplayTopic } from './replayRequest.js';

export type ReplayState = 'running' | 'stopped' | 'done' | 'failed';

export interface PartitionProgress {
  partition: number;
  /** First offset of the range. */
  startOffset: string;
  /** Offset just past the range (exclusive). */
  endOffset: string;
  /** Next offset to read; equals endOffset when the partition is finished. */
  position: string;
}

export interface ReplayProgress {
  /** Records read in the range. */
  scanned: number;
  /** Records that passed the filters (app, user; persistent and unexpired for push.ingest). */
  matched: number;
  /** Records re-produced so far. */
  replayed: number;
  partitions: PartitionProgress[];
}

/** A replay as the admin API shows it. */
export interface Replay {
  id: string;
  topic: ReplayTopic;
  from: string;
  to: string;
  app?: string;
  user?: string;
  ratePerSecond: number;
  state: ReplayState;
  createdAt: string;
  updatedAt: string;
  progress: ReplayProgress;
  error?: string;
}

interface ReplayDoc extends Omit<Replay, 'id'> {
  _id: string;
}

const toView = ({ _id, ...rest }: ReplayDoc): Replay => ({ id: _id, ...rest });

/**
 * Replays in the `replays` collection, one document each, written by the
 * admin process holding the replay's lease (progress) and by stop requests
 * (state). Every write is by `_id`.
 */
export function createReplayStore(db: Db) {
  const replays = db.collection<ReplayDoc>('replays');
  return {
    async create(r: Replay): Promise<void> {
      const { id, ...rest } = r;
      await replays.insertOne({ _id: id, ...rest });
    },
    async get(id: string): Promise<Replay | undefined> {
      const doc = await replays.findOne({ _id: id });
      return doc ? toView(doc) : undefined;
    },
    /** Newest first (ids sort by creation time). */
    async list(limit: number): Promise<Replay[]> {
      return (await replays.find({}).sort({ _id: -1 }).limit(limit).toArray()).map(toView);
    },
    async running(): Promise<Replay[]> {
      return (await replays.find({ state: 'running' }).limit(1000).toArray()).map(toView);
    },
    async saveProgress(id: string, progress: ReplayProgress): Promise<void> {
      await replays.updateOne({ _id: id }, { $set: { progress, updatedAt: new Date().toISOString() } });
    },
    async finish(id: string, state: ReplayState, progress: ReplayProgress | undefined, error?: string): Promise<void> {
      await replays.updateOne(
        { _id: id },
        { $set: { state, updatedAt: new Date().toISOString(), ...(progress ? { progress } : {}), ...(error ? { error } : {}) } },
      );
    },
  };
}

export type ReplayStore = ReturnType<typeof createReplayStore>;
