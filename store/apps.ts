import { createHash } from 'node:crypto';
import type { Db } from 'mongodb';
import { MIN_SIGNING_SECRET_LENGTH } from '../protocol/eventSignature.js';

export type DeviceMode = 'coexist' | 'single';

/** An app (tenant) as stored in the `apps` collection. API keys are kept only as SHA-256 hashes. */
export interface App {
  _id: string;
  name: string;
  apiKeyHashes: string[];
  /** Browser origins allowed to open sockets; `*` allows any. */
  allowedOrigins: string[];
  /** `coexist`: every device of a user stays connected; `single`: a new connection kicks older ones. */
  deviceMode: DeviceMode;
  /** Any client may join any group (true), or only the groups its token grants (false). */
  openGroups: boolean;
  limits: AppLimits;
  /**
   * Secrets that sign this app's push.events records (HMAC, see eventSignature.ts).
   * Kept as given, not hashed: checking an HMAC needs the secret. When there is
   * at least one, the collector refuses the app's unsigned records whatever its mode.
   */
  eventSigningSecrets?: string[];
  createdAt: Date;
}

export interface AppLimits {
  /** Largest payload, bytes of JSON. Default 16384. */
  maxPayloadBytes: number;
  /** Largest explicit recipient list per request. Default 10000. */
  maxRecipients: number;
  /** Submissions per second across all collectors (burst: one second's worth); 0 = unlimited. Default 0. */
  requestsPerSecond: number;
  /** Recipients per second across all collectors (a group or all message counts 1); 0 = unlimited. Default 0. */
  recipientsPerSecond: number;
}

export const DEFAULT_LIMITS: AppLimits = { maxPayloadBytes: 16_384, maxRecipients: 10_000, requestsPerSecond: 0, recipientsPerSecond: 0 };

export const hashApiKey = (key: string): string => createHash('sha256').update(key).digest('hex');

export interface AppStore {
  findByApiKey(apiKey: string): Promise<App | undefined>;
  get(appId: string): Promise<App | undefined>;
  /** Creates or updates an app; used by development mode and tests. */
  upsert(app: {
    id: string;
    name?: string;
    apiKeys: string[];
    allowedOrigins?: string[];
    deviceMode?: DeviceMode;
    openGroups?: boolean;
    limits?: Partial<AppLimits>;
    eventSigningSecrets?: string[];
  }): Promise<App>;
  ensureIndexes(): Promise<void>;
}

/**
 * Apps change rarely and are read on every request and connection, so lookups
 * are cached for a short time (bounded in size; misses are cached too, so a
 * flood of bad keys does not become a flood of queries).
 */
export function createAppStore({ db, cacheTtlMs = 5000, maxEntries = 10_000 }: { db: Db; cacheTtlMs?: number; maxEntries?: number }): AppStore {
  const apps = db.collection<App>('apps');
  const cache = new Map<string, { app: App | undefined; until: number }>();

  const cached = async (key: string, load: () => Promise<App | null>): Promise<App | undefined> => {
    const hit = cache.get(key);
    const now = Date.now();
    if (hit && hit.until > now) return hit.app;
    const app = (await load()) ?? undefined;
    if (cache.size >= maxEntries) cache.delete(cache.keys().next().value!);
    cache.set(key, { app, until: now + cacheTtlMs });
    return app;
  };

  return {
    findByApiKey(apiKey) {
      const hash = hashApiKey(apiKey);
      return cached(`k:${hash}`, () => apps.findOne({ apiKeyHashes: hash }).then(withDefaults));
    },
    get(appId) {
      return cached(`a:${appId}`, () => apps.findOne({ _id: appId }).then(withDefaults));
    },
    async upsert({ id, name, apiKeys, allowedOrigins, deviceMode, openGroups, limits, eventSigningSecrets }) {
      if (eventSigningSecrets?.some((s) => typeof s !== 'string' || s.length < MIN_SIGNING_SECRET_LENGTH)) {
        throw new Error(`eventSigningSecrets: each must be at least ${MIN_SIGNING_SECRET_LENGTH} characters`);
      }
      const app: App = {
        _id: id,
        name: name ?? id,
        apiKeyHashes: apiKeys.map(hashApiKey),
        allowedOrigins: allowedOrigins ?? ['*'],
        deviceMode: deviceMode ?? 'coexist',
        openGroups: openGroups ?? true,
        limits: { ...DEFAULT_LIMITS, ...limits },
        // Left as stored when not given, so re-upserting an app (development mode's demo) keeps its secrets.
        ...(eventSigningSecrets ? { eventSigningSecrets } : {}),
        createdAt: new Date(),
      };
      const { createdAt, ...rest } = app;
      await apps.updateOne({ _id: id }, { $set: rest, $setOnInsert: { createdAt } }, { upsert: true });
      cache.clear();
      return app;
    },
    async ensureIndexes() {
      await apps.createIndex({ apiKeyHashes: 1 });
    },
  };
}

/** Apps stored before a field existed get its default. */
function withDefaults(app: App | null): App | null {
  if (!app) return null;
  return { ...app, openGroups: app.openGroups ?? true, limits: { ...DEFAULT_LIMITS, ...app.limits } };
}
