/**
 * Records how far each partition has been forwarded without holding up the
 * next slice: `done` notes the offset, and one `record` per partition runs at
 * a time, always for the newest offset noted (offsets noted while one runs
 * are folded into the next). Bounded: at most one pending offset per partition.
 * A failed `record` is reported and retried with the next offset noted; a
 * crash before it lands only means the replay guard sees those records again.
 */
export function createForwardedCommits({
  record,
  onError,
}: {
  record: (topic: string, partition: number, offset: string) => Promise<void>;
  onError: (err: Error) => void;
}) {
  const wanted = new Map<string, { topic: string; partition: number; offset: string }>();
  const running = new Map<string, Promise<void>>();

  const run = (key: string): Promise<void> => {
    const p = (async () => {
      for (let next = wanted.get(key); next; next = wanted.get(key)) {
        wanted.delete(key);
        await record(next.topic, next.partition, next.offset).catch((err: Error) => onError(err));
      }
    })().finally(() => running.delete(key));
    running.set(key, p);
    return p;
  };

  return {
    done(topic: string, partition: number, offset: string) {
      const key = `${topic}|${partition}`;
      wanted.set(key, { topic, partition, offset });
      if (!running.has(key)) void run(key);
    },
    /** Waits until every noted offset was recorded (or failed): shutdown, tests. */
    async settle() {
      while (running.size > 0) await Promise.all(running.values());
    },
  };
}
