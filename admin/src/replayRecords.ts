import type { KafkaMessage, Message } from 'kafkajs';
import type { Topics } from '../../protocol/topics.js';
import { ORIGIN_HEADER } from '../../protocol/eventOrigin.js';
import { decodeRecord } from '../../schemas/registry.js';
import { DEFAULT_TTL_SECONDS } from '../../collector/src/validateMessage.js';
import { headerText, REPLAY_HEADER } from '../../dispatcher/src/replayGuard.js';
import type { ReplayTopic } from './replayRequest.js';

/** The stack's topic of a replayable topic name. */
export const physical = (topics: Topics, t: ReplayTopic) => (t === 'push.ingest' ? topics.ingest : topics.events);

/**
 * Decides whether one record of the range is replayed: not a copy made by an
 * earlier replay, decodable, passing the app/user filter, and unexpired (its
 * ttl counted from the original record); for push.ingest also persistent
 * (transient records were for their moment). A push.events record that became
 * a message keeps its identity: the collector finds the idempotency key it was
 * submitted under (its own, or its original position, see eventOrigin.ts),
 * kept for as long as the message lives, and answers with the original id
 * instead of submitting it again, so no device gets it twice, acked, parked or not.
 * Returns the app, or the reason it is skipped.
 */
export type Verdict = { app: string; skip?: undefined } | { skip: string; app?: undefined };

export function classify(
  topic: ReplayTopic,
  m: KafkaMessage,
  filter: { app?: string; user?: string },
  range: { fromMs: number; toMs: number },
  now: number,
): Verdict {
  const ts = Number(m.timestamp);
  if (ts < range.fromMs || ts > range.toMs) return { skip: 'outside-range' };
  if (headerText(m.headers, REPLAY_HEADER) !== undefined) return { skip: 'replay-copy' };
  try {
    if (topic === 'push.ingest') {
      const r = decodeRecord('IngestRecord', m.value, m.headers);
      if ((filter.app && r.app !== filter.app) || (filter.user && r.user !== filter.user)) return { skip: 'filtered' };
      if (!r.persistent) return { skip: 'transient' };
      if (r.expiresAt <= now) return { skip: 'expired' };
      return { app: r.app };
    }
    const ev = decodeRecord('BusinessEvent', m.value, m.headers);
    if (filter.app && ev.app !== filter.app) return { skip: 'filtered' };
    // Its lifetime counts from when it was first produced, not from the replay.
    if (ts + (ev.ttlSeconds ?? DEFAULT_TTL_SECONDS) * 1000 <= now) return { skip: 'expired' };
    return { app: ev.app };
  } catch {
    return { skip: 'undecodable' };
  }
}

/** The copy a replay re-produces: same key, value and headers, plus the replay id (and, for push.events, the original position). */
export function copyOf(m: KafkaMessage, replayId: string, topic: ReplayTopic, partition: number): Message {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(m.headers ?? {})) {
    const first = Array.isArray(v) ? v[0] : v;
    if (first !== undefined) headers[k] = first.toString();
  }
  headers[REPLAY_HEADER] = replayId;
  if (topic === 'push.events' && headers[ORIGIN_HEADER] === undefined) headers[ORIGIN_HEADER] = `${partition}:${m.offset}`;
  return { key: m.key, value: m.value, headers };
}
