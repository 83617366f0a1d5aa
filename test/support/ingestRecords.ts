import type { IngestRecord } from '../../schemas/types.js';

/**
 * A persistent IngestRecord of app `a` to user `u1`, made at 0 and expiring
 * at 10 s, with its id as trace id and every optional field null; `over`
 * replaces fields.
 */
export function ingestRecord(id: string, over: Partial<IngestRecord> = {}): IngestRecord {
  return {
    id,
    app: 'a',
    target: 'USER',
    user: 'u1',
    group: null,
    payload: '{}',
    persistent: true,
    createdAt: 0,
    expiresAt: 10_000,
    collapseKey: null,
    traceId: id,
    taskId: null,
    ...over,
  };
}
