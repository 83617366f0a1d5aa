import type { Kafka, KafkaMessage } from 'kafkajs';
import type { PartitionProgress } from './replayStore.js';

/**
 * Resolves a time range to offsets per partition: the first offset at or
 * after `fromMs`, and the first offset after `toMs` (exclusive end; the high
 * watermark when nothing newer exists yet, which fixes the end at creation).
 */
export async function resolveRange(kafka: Kafka, topic: string, fromMs: number, toMs: number): Promise<PartitionProgress[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const starts = await admin.fetchTopicOffsetsByTimestamp(topic, fromMs);
    const ends = await admin.fetchTopicOffsetsByTimestamp(topic, toMs + 1);
    const endOf = new Map(ends.map((e) => [e.partition, e.offset]));
    return starts
      .map((s) => {
        const end = endOf.get(s.partition) ?? s.offset;
        const start = BigInt(s.offset) > BigInt(end) ? end : s.offset;
        return { partition: s.partition, startOffset: start, endOffset: end, position: start };
      })
      .sort((a, b) => a.partition - b.partition);
  } finally {
    await admin.disconnect();
  }
}

export interface ScanOptions {
  kafka: Kafka;
  /** A group of the scan's own: it is never committed to and deleted afterwards. */
  groupId: string;
  topic: string;
  /** Partitions to read from `position` up to `endOffset`; positions are advanced by `onMessages`. */
  partitions: PartitionProgress[];
  /**
   * Handles in-range messages of one partition in offset order and moves
   * `p.position` past what it finished. May stop early (stop requested).
   */
  onMessages(p: PartitionProgress, messages: KafkaMessage[], heartbeat: () => Promise<void>): Promise<void>;
  /** Polled between batches; true ends the scan early. */
  shouldStop(): boolean;
  /** Gives up when a partition makes no progress for this long. Default 60000 ms. */
  stallMs?: number;
}

const remaining = (p: PartitionProgress) => BigInt(p.position) < BigInt(p.endOffset);

/**
 * Reads offset ranges with a consumer of its own (assigned partitions are
 * seeked to their start and nothing is ever committed), so the live consumer
 * groups' offsets are never touched. Resolves when every range is read or a
 * stop was requested.
 */
export async function scanRanges(opts: ScanOptions): Promise<void> {
  const { kafka, groupId, topic, partitions, onMessages, shouldStop, stallMs = 60_000 } = opts;
  const pending = new Map(partitions.filter(remaining).map((p) => [p.partition, p]));
  if (pending.size === 0) return;
  // Short fetch waits: the scan ends (and disconnects, which waits for the fetch in flight) as soon as its ranges are read.
  const consumer = kafka.consumer({
    groupId,
    sessionTimeout: 30_000,
    heartbeatInterval: 3000,
    maxWaitTimeInMs: 200,
    maxBytesPerPartition: 1 << 20,
    retry: { retries: 5 },
  });
  await consumer.connect();
  let failure: unknown;
  let lastProgress = Date.now();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, heartbeat, isRunning, isStale }) => {
        const p = pending.get(batch.partition);
        if (!p) return;
        const end = BigInt(p.endOffset);
        // Batches fetched before the seek took effect can start anywhere: keep only what is next.
        const inRange = batch.messages.filter((m) => BigInt(m.offset) >= BigInt(p.position) && BigInt(m.offset) < end);
        if (inRange.length > 0 && isRunning() && !isStale() && !shouldStop()) {
          try {
            await onMessages(p, inRange, async () => {
              lastProgress = Date.now();
              await heartbeat();
            });
            lastProgress = Date.now();
          } catch (err) {
            failure = err;
          }
        }
        // Offsets are dense here (no transactions, no compaction), but a range whose end lies beyond what exists is done too.
        if (!remaining(p) || BigInt(batch.highWatermark) <= BigInt(p.position)) {
          pending.delete(p.partition);
          consumer.pause([{ topic, partitions: [p.partition] }]);
        }
      },
    });
    const idle = partitions.map((p) => p.partition).filter((n) => !pending.has(n));
    if (idle.length > 0) consumer.pause([{ topic, partitions: idle }]);
    for (const p of pending.values()) consumer.seek({ topic, partition: p.partition, offset: p.position });
    while (pending.size > 0 && failure === undefined && !shouldStop()) {
      if (Date.now() - lastProgress > stallMs) throw new Error(`replay made no progress for ${stallMs} ms`);
      await new Promise((r) => setTimeout(r, 100));
    }
    if (failure !== undefined) throw failure;
  } finally {
    await consumer.disconnect().catch(() => undefined);
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([groupId]))
      .catch(() => undefined)
      .finally(() => void admin.disconnect().catch(() => undefined));
  }
}
