import type { Logger } from '../logger.js';
import { processErrors } from '../metrics.js';

/**
 * Wraps an event listener or timer body so that nothing it throws (or
 * rejects with) reaches the emitter: a throw inside a Redis 'message'
 * listener, a ws 'close' listener or a setInterval body would otherwise
 * become an uncaughtException and take every connection of the process down
 * with it. The error is logged with the listener's name and counted in
 * `push_listener_errors_total{listener}`; the process goes on.
 */
export function contain<A extends unknown[]>(logger: Logger, listener: string, fn: (...args: A) => unknown): (...args: A) => void {
  const report = (err: unknown) => {
    processErrors.listenerErrors.inc({ listener });
    logger.error({ err, listener }, 'listener failed; error contained');
  };
  return (...args: A) => {
    try {
      const out = fn(...args);
      if (out instanceof Promise) out.catch(report);
    } catch (err) {
      report(err);
    }
  };
}
