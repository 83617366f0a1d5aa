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
      if (waiting.length >= maxWaiting) throw new Error(`store limiter: ${maxWaiting} calls already waiting`);
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
