/** Node helpers for business systems: submit messages over HTTP or Kafka. */
export { createPublisher, parseRetryAfter, type Publisher, type PublisherOptions } from './httpPublisher.js';
export { createKafkaPublisher, type KafkaPublisher, type KafkaPublisherOptions, type PushEvent } from './kafkaPublisher.js';
export { PublishError } from './publishError.js';
export type { PushMessage, SubmitResult, Target } from './pushMessage.js';
export { newSigningSecret, signEvent, SIGNATURE_HEADER } from '../../protocol/eventSignature.js';
