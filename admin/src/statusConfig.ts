import { ConfigError, envInt, envList, envUrl, type Env } from '../../platform/config.js';

/** Settings of the operator status API and dashboard (part of the admin service's config). */
export interface StatusConfig {
  /** Collector checked by the status API. Default http://127.0.0.1:8080 (COLLECTOR_URL). */
  collectorUrl: string;
  /** Auth service checked by the status API. Default http://127.0.0.1:8081 (AUTH_URL). */
  authUrl: string;
  /** Dispatchers checked by the status API and sampled for the forwarded rate. Default http://127.0.0.1:8083 (DISPATCHER_URLS). */
  dispatcherUrls: string[];
  /** How often pushers and the collector are sampled for the rate and latency charts. Default 5000 ms. */
  sampleMs: number;
  /**
   * Hosts of pusher URLs (read from Redis) the admin service may call for metrics, health and drains:
   * host names or addresses, `loopback`, or `*` (NODE_URL_ALLOWED_HOSTS). Default: loopback plus the
   * hosts of BIND_HOST, COLLECTOR_URL, AUTH_URL and DISPATCHER_URLS.
   */
  nodeUrlHosts: string[];
}

export function loadStatusConfig(env: Env): StatusConfig {
  const urls = envList(env, 'DISPATCHER_URLS', ['http://127.0.0.1:8083']);
  for (const u of urls) {
    if (!/^https?:\/\/[^\s/]+/.test(u)) throw new ConfigError('DISPATCHER_URLS', `expected comma-separated http(s) URLs, got "${u}"`);
  }
  const collectorUrl = envUrl(env, 'COLLECTOR_URL', 'http://127.0.0.1:8080', ['http:', 'https:']).replace(/\/$/, '');
  const authUrl = envUrl(env, 'AUTH_URL', 'http://127.0.0.1:8081', ['http:', 'https:']).replace(/\/$/, '');
  const bind = env.BIND_HOST?.trim();
  const configured = [
    'loopback',
    ...(bind && bind !== '0.0.0.0' && bind !== '::' ? [bind] : []),
    ...[collectorUrl, authUrl, ...urls].map((u) => new URL(u).hostname),
  ];
  const nodeUrlHosts = envList(env, 'NODE_URL_ALLOWED_HOSTS', [...new Set(configured)]);
  for (const h of nodeUrlHosts) {
    if (!/^(\*|[A-Za-z0-9.\-:[\]]{1,255})$/.test(h))
      throw new ConfigError('NODE_URL_ALLOWED_HOSTS', `expected host names, addresses, loopback or *, got "${h}"`);
  }
  return {
    collectorUrl,
    authUrl,
    nodeUrlHosts,
    dispatcherUrls: urls.map((u) => u.replace(/\/$/, '')),
    sampleMs: envInt(env, 'STATUS_SAMPLE_MS', 5000, { min: 200, max: 60_000 }),
  };
}
