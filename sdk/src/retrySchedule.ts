import { CLOSE } from '../../protocol/codes.js';
import { backoffCap, createBackoff, type Backoff, type BackoffConfig } from '../../protocol/backoff.js';

/**
 * When the next connection attempt runs: after a full-jitter backoff delay
 * (protocol/backoff.ts) that grows with each failure and starts small again
 * after a success, plus a pause when the server said we come too often (4029).
 * At most one attempt is scheduled at a time.
 */
export class RetrySchedule {
  private readonly backoff: Backoff;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor(private readonly config: BackoffConfig) {
    this.backoff = createBackoff(config);
  }

  /** Failed attempts since the last reset. */
  get attempt(): number {
    return this.backoff.attempt;
  }

  /** After a success, or when the next wait should start from the smallest window again. */
  reset(): void {
    this.backoff.reset();
  }

  /** The wait before the next attempt after a close with `code`; counts one more failure. */
  nextDelay(code: number): number {
    const delayMs = this.backoff.next();
    // 4029 asks for a pause, not just a retry.
    return code === CLOSE.RATE_LIMITED ? delayMs + backoffCap(this.config, 4) : delayMs;
  }

  /** Runs `attempt` after `delayMs`, replacing any attempt already scheduled. */
  schedule(delayMs: number, attempt: () => void): void {
    this.cancel();
    this.timer = setTimeout(attempt, delayMs);
  }

  /** Drops the scheduled attempt, if any. */
  cancel(): void {
    clearTimeout(this.timer);
  }
}
