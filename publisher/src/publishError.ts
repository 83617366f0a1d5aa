/**
 * The one error the publishers throw. `code` is the collector's error code
 * (`INVALID_REQUEST`, `UNAUTHORIZED`, ...) or one of the client's own:
 * `NETWORK_ERROR`, `TIMEOUT`, `BAD_RESPONSE`, `INVALID_MESSAGE`.
 */
export class PublishError extends Error {
  /** HTTP status, or 0 when no response arrived. */
  readonly status: number;
  readonly code: string;
  /** Whether trying again later (with the same idempotency key) may succeed. */
  readonly retriable: boolean;
  readonly details?: unknown;
  /** Requests made before giving up. */
  readonly attempts: number;

  constructor(code: string, message: string, opts: { status?: number; retriable?: boolean; details?: unknown; attempts?: number; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PublishError';
    this.code = code;
    this.status = opts.status ?? 0;
    this.retriable = opts.retriable ?? false;
    this.details = opts.details;
    this.attempts = opts.attempts ?? 1;
  }

  withAttempts(attempts: number): PublishError {
    return new PublishError(this.code, this.message, { status: this.status, retriable: this.retriable, details: this.details, attempts, cause: this.cause });
  }
}
