import type { Logger } from './logger.js';
import { createLogger } from './logger.js';

export type Closer = () => Promise<void> | void;

/**
 * Runs a service: starts it, then on SIGTERM/SIGINT closes its resources in
 * reverse order of registration and exits 0 (1 if closing failed or timed out).
 */
export async function runService(
  logger: Logger,
  start: (onClose: (name: string, close: Closer) => void) => Promise<void>,
  { shutdownTimeoutMs = 8000 }: { shutdownTimeoutMs?: number } = {},
): Promise<void> {
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
  process.on('unhandledRejection', (err) => logger.error({ err }, 'unhandled rejection'));

  try {
    await start((name, close) => closers.push({ name, close }));
  } catch (err) {
    logger.fatal({ err }, 'failed to start');
    await shutdown('startup-failure', 1);
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
