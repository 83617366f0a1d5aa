import type { Logger } from './logger.js';
import { createLogger } from './logger.js';
import { processErrors } from './metrics.js';

export type Closer = () => Promise<void> | void;

/** sysexits' EX_SOFTWARE: the process ended itself on an internal error, not on a signal or a bad config (2). */
export const EXIT_UNCAUGHT = 70;

/**
 * Last resort for an error that escaped every listener's own handling.
 *
 * An uncaught exception leaves the process in an unknown state (half-updated
 * tables, a socket callback cut short), so the process logs it with its stack
 * and exits EXIT_UNCAUGHT at once, on purpose, for its supervisor to restart
 * it: crash-only. Closers are not run (they could hang on that same state);
 * pino's exit hook flushes the log line synchronously, and a plain line goes
 * to stderr as well in case the logger itself is what failed.
 *
 * An unhandled rejection is a lost async result, not corrupted synchronous
 * state: it is logged with its stack and counted
 * (`push_unhandled_rejections_total`), and the process goes on.
 */
export function installProcessGuard(logger: Logger): void {
  process.on('uncaughtException', (err, origin) => exitForRestart(logger, origin, err, { origin }));
  process.on('unhandledRejection', (err) => {
    processErrors.unhandledRejections.inc();
    logger.error({ err }, 'unhandled rejection');
  });
}

/**
 * Runs a service: starts it, then on SIGTERM/SIGINT closes its resources in
 * reverse order of registration and exits 0 (1 if closing failed or timed out).
 * An uncaught exception exits EXIT_UNCAUGHT (see installProcessGuard).
 */
export async function runService(
  logger: Logger,
  start: (onClose: (name: string, close: Closer) => void) => Promise<void>,
  { shutdownTimeoutMs = 8000 }: { shutdownTimeoutMs?: number } = {},
): Promise<void> {
  installProcessGuard(logger);
  const closers: { name: string; close: Closer }[] = [];
  let stopping = false;

  const shutdown = async (signal: string, exitCode = 0) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    let closing = '';
    const timer = setTimeout(() => {
      logger.error({ timeoutMs: shutdownTimeoutMs, resource: closing }, 'shutdown timed out');
      process.exit(1);
    }, shutdownTimeoutMs);
    timer.unref();
    let failed = false;
    for (const { name, close } of closers.reverse()) {
      closing = name;
      try {
        await close();
      } catch (err) {
        failed = true;
        logger.error({ err, resource: name }, 'close failed');
      }
    }
    logger.info('stopped');
    process.exit(failed ? 1 : exitCode);
  };

  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));

  try {
    await start((name, close) => closers.push({ name, close }));
  } catch (err) {
    logger.fatal({ err }, 'failed to start');
    await shutdown('startup-failure', 1);
  }
}

/**
 * Ends the process on purpose, for its supervisor to restart it: logs why
 * (level fatal, with the error's stack), writes a plain line to stderr in
 * case the logger is what failed, and exits EXIT_UNCAUGHT without running
 * closers. For states a process cannot recover from by itself.
 */
export function exitForRestart(logger: Logger, reason: string, err: unknown, context: Record<string, unknown> = {}): never {
  try {
    const service = (logger.bindings().service as string | undefined) ?? 'service';
    process.stderr.write(`${service}: ${reason}, exiting ${EXIT_UNCAUGHT}: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    logger.fatal(
      { err, ...context, exitCode: EXIT_UNCAUGHT },
      reason === 'uncaughtException'
        ? 'uncaught exception; exiting for the supervisor to restart the process'
        : `${reason}; exiting for the supervisor to restart the process`,
    );
  } finally {
    process.exit(EXIT_UNCAUGHT);
  }
}

/** Prints a configuration error without a stack trace and exits 2. */
export function exitOnConfigError(service: string, err: unknown): never {
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${service}: invalid configuration: ${message}\n`);
  process.exit(2);
}

export interface ServiceDeps<C> {
  config: C;
  logger: Logger;
  onClose: (name: string, close: Closer) => void;
}

/** Entry point shared by every service: validate config, create the logger, run until signalled. */
export async function bootService<C extends { logLevel: string }>(
  service: string,
  loadConfig: () => C,
  start: (deps: ServiceDeps<C>) => Promise<void>,
  shutdownTimeoutMs: (config: C) => number = () => 8000,
): Promise<void> {
  let config: C;
  try {
    config = loadConfig();
  } catch (err) {
    exitOnConfigError(service, err);
  }
  const logger = createLogger(service, config.logLevel);
  await runService(logger, (onClose) => start({ config, logger, onClose }), { shutdownTimeoutMs: shutdownTimeoutMs(config) });
}
