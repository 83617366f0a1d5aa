/**
 * One error family for every service: a stable code clients can match on,
 * the HTTP status to answer with, and whether retrying may help.
 */
export class PushError extends Error {
  readonly code: string;
  readonly status: number;
  readonly retriable: boolean;
  readonly details?: unknown;

  constructor(code: string, message: string, opts: { status?: number; retriable?: boolean; cause?: unknown; details?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'PushError';
    this.code = code;
    this.status = opts.status ?? 500;
    this.retriable = opts.retriable ?? false;
    this.details = opts.details;
  }

  toJSON(): { error: { code: string; message: string; details?: unknown } } {
    return {
      error: { code: this.code, message: this.message, ...(this.details === undefined ? {} : { details: this.details }) },
    };
  }
}

export const invalid = (message: string, details?: unknown) => new PushError('INVALID_REQUEST', message, { status: 400, details });
export const unauthorized = (message = 'missing or invalid credentials') => new PushError('UNAUTHORIZED', message, { status: 401 });
export const notFound = (message: string) => new PushError('NOT_FOUND', message, { status: 404 });
export const unavailable = (message: string, cause?: unknown) => new PushError('UNAVAILABLE', message, { status: 503, retriable: true, cause });

/** Rejects after `ms` so a hung dependency cannot hang the caller. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new PushError('TIMEOUT', `${what} timed out after ${ms} ms`, { retriable: true })), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
