/** What a business system submits (docs/openapi.yaml, `POST /v1/messages`). */
export type Target = { users: string[] } | { group: string } | { all: true };

export interface PushMessage {
  to: Target;
  /** Any JSON value, delivered unchanged. */
  payload: unknown;
  /** Stored and delivered until acked or expired. Default true (server side). */
  persistent?: boolean;
  ttlSeconds?: number;
  /** Makes retries safe: the collector answers a repeat with the first id. Generated when absent. */
  idempotencyKey?: string;
  collapseKey?: string;
  traceId?: string;
}

export interface SubmitResult {
  id: string;
  /** `stored`: persisted, Kafka publish left to the outbox. Do not resubmit either way. */
  status: 'accepted' | 'stored';
  /** True when the idempotency key was seen before; `id` is the first submission's. */
  duplicate?: boolean;
  taskId?: string;
}
