/**
 * At most `limit` calls of `run` at a time; the others wait in arrival order
 * (up to `maxWaiting`, past which `run` rejects instead of queueing without bound).
 */
export function createLimiter(limit: number, maxWaiting = 100_000) {
  const waiting: (() => void)[] = [];
  let running = 0;
  return async function run<T>(fn: () => Promise<T>): Promise<T> {
    // A freed slot passes straight to the next waiter, so the count never exceeds the limit.
    if (running >= limit) {
      if (waiting.length >= maxWaiting) throw new Error(`limiter: ${maxWaiting} calls already waiting`);
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else running++;
    try {
      return await fn();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

export type Limiter = ReturnType<typeof createLimiter>;

/**
 * Runs `fn` over `items` with at most `limit` calls at once, and resolves with
 * the results in the order of `items`. The first rejection rejects the whole
 * (calls already started run to their end; no new one starts).
 */
export async function mapBounded<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (next < items.length && !failed) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!, i);
      } catch (err) {
        failed = true;
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(0, Math.min(limit, items.length)) }, worker));
  return out;
}
