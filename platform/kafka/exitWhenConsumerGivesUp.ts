import type { Consumer } from 'kafkajs';
import type { Logger } from '../logger.js';
import { exitForRestart, type Closer } from '../lifecycle.js';

/**
 * KafkaJS restarts a consumer after a retriable failure, but after an error it
 * does not retry (or when restartOnFailure says no) the consumer stops for
 * good while the process keeps running: a dispatcher or pusher that is up,
 * ready, and deaf. Crash-only instead: the process exits (EXIT_UNCAUGHT) with
 * the error logged, and its supervisor starts a fresh one that rejoins the
 * group. A crash while the service is shutting down is expected and ignored.
 */
export function exitWhenConsumerGivesUp(
  consumer: Consumer,
  logger: Logger,
  name: string,
  onClose: (name: string, close: Closer) => void,
  exit: typeof exitForRestart = exitForRestart,
): void {
  let closing = false;
  // Registered after the consumer's own closer, so it runs before it (closers run in reverse).
  onClose(`${name}-consumer-watch`, () => {
    closing = true;
  });
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    if (closing) return;
    if (payload.restart) {
      logger.warn({ err: payload.error, consumer: name, groupId: payload.groupId }, 'consumer failed; KafkaJS restarts it');
      return;
    }
    exit(logger, `consumer ${name} stopped for good after an error KafkaJS does not retry`, payload.error, { consumer: name, groupId: payload.groupId });
  });
}
