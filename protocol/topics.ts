/**
 * Kafka topic and consumer-group names: the contracts between services (see
 * docs/topics.md). `KAFKA_TOPIC_PREFIX` (default empty) prefixes all of them,
 * so several independent stacks (tests, staging) can share one cluster.
 */
export interface Topics {
  events: string;
  ingest: string;
  upstream: string;
  presence: string;
  dlq: string;
  acks: string;
  node(nodeId: string): string;
  groups: {
    collectorEvents: string;
    dispatcher: string;
    pusher(nodeId: string): string;
  };
}

export function topicNames(prefix = ''): Topics {
  const t = (name: string) => `${prefix}${name}`;
  return {
    events: t('push.events'),
    ingest: t('push.ingest'),
    upstream: t('push.upstream'),
    presence: t('push.presence'),
    dlq: t('push.dlq'),
    acks: t('push.acks'),
    node: (nodeId) => t(`push.node.${nodeId}`),
    groups: {
      collectorEvents: t('push-collector-events'),
      dispatcher: t('push-dispatcher'),
      pusher: (nodeId) => t(`push-pusher-${nodeId}`),
    },
  };
}
