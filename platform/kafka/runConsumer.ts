import type { Consumer, ConsumerRunConfig } from 'kafkajs';
import type { Logger } from '../logger.js';
import type { Closer } from '../lifecycle.js';
import { exitWhenConsumerGivesUp } from './exitWhenConsumerGivesUp.js';

export interface RunConsumerOptions {
  consumer: Consumer;
  /** Names the consumer in logs and in its watch's closer (`<name>-consumer-watch`). */
  name: string;
  logger: Logger;
  onClose: (name: string, close: Closer) => void;
  topic: string;
  fromBeginning: boolean;
  run: ConsumerRunConfig;
  /** How the consumer leaves on close, under which closer name. Default: `consumer`, a plain disconnect. */
  leave?: { name: string; close: Closer };
  /** Closers that run after the consumer stops being watched and before it leaves (e.g. a last commit). */
  beforeLeaving?: { name: string; close: Closer }[];
}

/**
 * The plumbing every consumer of the services shares: connects, leaves its
 * group when the service closes, exits the process if KafkaJS gives up on it
 * (exitWhenConsumerGivesUp), subscribes to one topic and runs. What each batch
 * does (commits, slices, pauses) stays with the caller's `run`.
 */
export async function runConsumer(opts: RunConsumerOptions): Promise<void> {
  const { consumer, logger, onClose } = opts;
  await consumer.connect();
  // Closers run in reverse: the watch stops first, then `beforeLeaving`, then the consumer leaves.
  const leave = opts.leave ?? { name: 'consumer', close: () => consumer.disconnect() };
  onClose(leave.name, leave.close);
  for (const c of opts.beforeLeaving ?? []) onClose(c.name, c.close);
  exitWhenConsumerGivesUp(consumer, logger, opts.name, onClose);
  await consumer.subscribe({ topic: opts.topic, fromBeginning: opts.fromBeginning });
  await consumer.run(opts.run);
}
