/**
 * The one poll-until helper of the tests (no copies elsewhere): for state
 * that changes with no event to await (another process, a store, a broker).
 */
export interface EventuallyOptions<T> {
  /** What is awaited, for the failure message (default: the source of `check`). */
  what?: string;
  /** The whole wait, attempts included (default 10 s). */
  timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  intervalMs?: number;
  /** When the value `check` returned is the awaited one (default: it is truthy); null and undefined never are. */
  until?: (value: NonNullable<T>) => boolean;
}

const describe = (fn: () => unknown) => String(fn).replace(/\s+/g, ' ').slice(0, 160);
const shown = (v: unknown) => (v !== null && typeof v === 'object' ? JSON.stringify(v)?.slice(0, 1000) : String(v));

/**
 * Calls `check` until its value is the awaited one and returns that value.
 * An attempt that throws is retried. Bounded: after `timeoutMs` (a hanging
 * attempt included) it fails with `what`, the last value and the last error.
 */
export async function eventually<T>(check: () => T | Promise<T>, options: EventuallyOptions<T> = {}): Promise<NonNullable<T>> {
  const { what = describe(check), timeoutMs = 10_000, intervalMs = 50, until = Boolean } = options;
  const deadline = Date.now() + timeoutMs;
  let last: { value?: unknown; error?: unknown } = {};
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<'expired'>((resolve) => (timer = setTimeout(resolve, timeoutMs, 'expired')));
  try {
    while (Date.now() < deadline) {
      try {
        const v = await Promise.race([Promise.resolve().then(check), expired]);
        if (v === 'expired') break;
        if (v !== null && v !== undefined && until(v as NonNullable<T>)) return v as NonNullable<T>;
        last = { value: v, error: last.error };
      } catch (error) {
        last = { value: last.value, error };
      }
      await Promise.race([new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(0, deadline - Date.now())))), expired]);
    }
  } finally {
    clearTimeout(timer);
  }
  const details = [
    'value' in last && last.value !== undefined ? `last value: ${shown(last.value)}` : '',
    last.error !== undefined ? `last error: ${last.error instanceof Error ? last.error.message : String(last.error)}` : '',
  ].filter(Boolean);
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${details.length ? ` (${details.join('; ')})` : ''}`);
}
