import { ConfigError, envInt, envList, envUrl, type Env } from '../../common/src/config.js';

/** Settings of the operator status API, dashboard and message traces (part of the dispatcher's config). */
export interface StatusConfig {
  /** Collector checked by the status API. Default http://127.0.0.1:8080 (COLLECTOR_URL). */
  collectorUrl: string;
  /** Auth service checked by the status API. Default http://127.0.0.1:8081 (AUTH_URL). */
  authUrl: string;
  /** Other dispatchers' admin URLs to check besides this one. Default none (DISPATCHER_URLS). */
  dispatcherUrls: string[];
  /** How often pushers and the collector are sampled for the rate and latency charts. Default 5000 ms. */
  sampleMs: number;
  /** Lifetime of a message's trace record in Redis; 0 turns tracing off. Default 3600 s. */
  traceTtlSeconds: number;
}

export function loadStatusConfig(env: Env): StatusConfig {
  const urls = envList(env, 'DISPATCHER_URLS', []);
  for (const u of urls) {
    if (!/^https?:\/\/[^\s/]+/.test(u)) throw new ConfigError('DISPATCHER_URLS', `expected comma-separated http(s) URLs, got "${u}"`);
  }
  return {
    collectorUrl: envUrl(env, 'COLLECTOR_URL', 'http://127.0.0.1:8080', ['http:', 'https:']).replace(/\/$/, ''),
    authUrl: envUrl(env, 'AUTH_URL', 'http://127.0.0.1:8081', ['http:', 'https:']).replace(/\/$/, ''),
    dispatcherUrls: urls.map((u) => u.replace(/\/$/, '')),
    sampleMs: envInt(env, 'STATUS_SAMPLE_MS', 5000, { min: 200, max: 60_000 }),
    traceTtlSeconds: envInt(env, 'TRACE_TTL_SECONDS', 3600, { min: 0, max: 7 * 86_400 }),
  };
}
