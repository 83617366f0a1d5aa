import { invalid } from '../../platform/errors.js';

/** Topics a replay may read, by logical name (KAFKA_TOPIC_PREFIX is applied later). */
export const REPLAYABLE_TOPICS = ['push.ingest', 'push.events'] as const;
export type ReplayTopic = (typeof REPLAYABLE_TOPICS)[number];

export interface ReplayRequest {
  topic: ReplayTopic;
  fromMs: number;
  toMs: number;
  app?: string;
  user?: string;
  /** Records re-produced per second at most. Default 1000, 1..50000. */
  ratePerSecond: number;
  dryRun: boolean;
}

const FIELDS = new Set(['topic', 'from', 'to', 'app', 'user', 'ratePerSecond', 'dryRun']);
const NAME = /^[A-Za-z0-9._:@|-]{1,200}$/;
const ISO = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/;
export const DEFAULT_REPLAY_RATE = 1000;
export const MAX_REPLAY_RATE = 50_000;

function time(body: Record<string, unknown>, field: 'from' | 'to'): number {
  const v = body[field];
  if (v === undefined) throw invalid(`${field} is required (ISO-8601 or epoch milliseconds)`, { field });
  if (typeof v === 'number') {
    if (!Number.isInteger(v) || v < 0 || v > 8.64e15) throw invalid(`${field} must be epoch milliseconds (a non-negative integer)`, { field });
    return v;
  }
  if (typeof v === 'string' && ISO.test(v)) {
    const ms = Date.parse(v);
    // Kafka's record timestamps start at the epoch; a negative one asks it for something else (-1 latest, -2 earliest).
    if (Number.isFinite(ms) && ms < 0) throw invalid(`${field} must not be before 1970-01-01T00:00:00Z`, { field });
    if (Number.isFinite(ms)) return ms;
  }
  throw invalid(`${field} must be an ISO-8601 date-time or epoch milliseconds`, { field });
}

/** Validates a `POST /v1/admin/replays` body; throws 400 INVALID_REQUEST naming the field. */
export function parseReplayRequest(raw: unknown, { maxRangeMs, now = Date.now() }: { maxRangeMs: number; now?: number }): ReplayRequest {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw invalid('body must be a JSON object');
  const body = raw as Record<string, unknown>;
  const unknown = Object.keys(body).filter((k) => !FIELDS.has(k));
  if (unknown.length > 0) throw invalid(`unknown field ${unknown[0]}`, { field: unknown[0] });
  if (typeof body.topic !== 'string' || !(REPLAYABLE_TOPICS as readonly string[]).includes(body.topic)) {
    throw invalid(`topic must be one of ${REPLAYABLE_TOPICS.join(', ')}`, { field: 'topic' });
  }
  const topic = body.topic as ReplayTopic;
  const fromMs = time(body, 'from');
  const toMs = time(body, 'to');
  if (fromMs > toMs) throw invalid('from must not be after to', { field: 'from' });
  if (fromMs > now) throw invalid('from is in the future: nothing to replay', { field: 'from' });
  if (toMs - fromMs > maxRangeMs) {
    throw invalid(`range too large: at most ${Math.round(maxRangeMs / 3_600_000)} hours per replay`, { field: 'to', maxRangeMs });
  }
  for (const f of ['app', 'user'] as const) {
    if (body[f] !== undefined && (typeof body[f] !== 'string' || !NAME.test(body[f])))
      throw invalid(`${f} must be a non-empty id of at most 200 characters`, { field: f });
  }
  if (body.user !== undefined && topic === 'push.events') {
    throw invalid('user filters apply to push.ingest only (a push.events record may address many users)', { field: 'user' });
  }
  const rate = body.ratePerSecond ?? DEFAULT_REPLAY_RATE;
  if (typeof rate !== 'number' || !Number.isInteger(rate) || rate < 1 || rate > MAX_REPLAY_RATE) {
    throw invalid(`ratePerSecond must be an integer from 1 to ${MAX_REPLAY_RATE}`, { field: 'ratePerSecond' });
  }
  if (body.dryRun !== undefined && typeof body.dryRun !== 'boolean') throw invalid('dryRun must be a boolean', { field: 'dryRun' });
  return {
    topic,
    fromMs,
    toMs,
    ...(typeof body.app === 'string' ? { app: body.app } : {}),
    ...(typeof body.user === 'string' ? { user: body.user } : {}),
    ratePerSecond: rate,
    dryRun: body.dryRun === true,
  };
}
