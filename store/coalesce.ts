/**
 * Turns a batch function into a per-item call: the items added in the same
 * event-loop turn (up to `maxBatch`) go to `run` together, and each caller
 * gets its own result. Used to serve a storm of connecting devices with a few
 * batched store calls instead of one round trip set per device.
 */
export function createCoalescer<Req, Res>(run: (batch: Req[]) => Promise<Res[]>, maxBatch = 500) {
  let queue: { req: Req; resolve: (res: Res) => void; reject: (err: unknown) => void }[] = [];
  let scheduled = false;

  const flush = () => {
    scheduled = false;
    if (queue.length === 0) return; // flushed early, at maxBatch
    const batch = queue;
    queue = [];
    run(batch.map((b) => b.req)).then(
      (results) => batch.forEach((b, i) => b.resolve(results[i]!)),
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    );
  };

  return (req: Req): Promise<Res> =>
    new Promise<Res>((resolve, reject) => {
      queue.push({ req, resolve, reject });
      if (queue.length >= maxBatch) flush();
      else if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
