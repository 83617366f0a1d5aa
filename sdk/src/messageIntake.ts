import { createRecentIds } from './dedupe.js';
import type { MessageFrame } from './frames.js';

export interface MessageIntakeConfig {
  dedupeSize: number;
  autoAck: boolean;
  /** Hands the message to the app; a promise (or a throw) means the app is not done (or failed). */
  emit(m: MessageFrame): Promise<void> | undefined;
  /** Queues an ack frame entry. */
  queueAck(id: string): void;
  onHandlerFailed(m: MessageFrame, err: unknown): void;
}

export interface MessageIntake {
  receive(m: MessageFrame): void;
  /** The app acked `id` itself (`autoAck: false`). */
  acked(id: string): void;
}

/**
 * What happens to each incoming message: emitted once per id, acked after the
 * app is done with it, and acked again (not emitted) when the server sends it
 * again, since a repeat means the earlier ack did not stick.
 */
export function createMessageIntake({ dedupeSize, autoAck, emit, queueAck, onHandlerFailed }: MessageIntakeConfig): MessageIntake {
  const seen = createRecentIds(dedupeSize);
  const ack = (id: string) => {
    seen.markAcked(id);
    queueAck(id);
  };
  return {
    receive(m) {
      if (!seen.add(m.id)) {
        // Still being handled: its ack goes out when the handler finishes.
        if (m.persistent && seen.isAcked(m.id)) queueAck(m.id);
        return;
      }
      const handled = emit(m);
      const ackWhenDone = autoAck && m.persistent;
      if (handled === undefined) {
        if (ackWhenDone) ack(m.id);
        return;
      }
      handled.then(
        () => ackWhenDone && ack(m.id),
        (err: unknown) => {
          // Not acked, and forgotten, so the redelivery on the next connect reaches the app again.
          if (m.persistent) seen.forget(m.id);
          onHandlerFailed(m, err);
        },
      );
    },
    acked: ack,
  };
}
