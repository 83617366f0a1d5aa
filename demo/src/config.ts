import { ConfigError, envEnum, envPort, envString, envUrl, loadCommonConfig, type CommonConfig, type Env } from '../../platform/config.js';

export interface DemoConfig extends Pick<CommonConfig, 'mode' | 'logLevel' | 'host'> {
  /** Port of the demo page. Default 8088. */
  port: number;
  /** Auth service, for tokens. Default `http://127.0.0.1:8081`. */
  authUrl: string;
  /** Collector, for the send panel. Default `http://127.0.0.1:8080`. */
  collectorUrl: string;
  /** API key of the app the page acts for; stays on the server. Default `demo-key`. */
  apiKey: string;
}

/**
 * The demo server mints tokens and sends messages with an app's API key for
 * anyone who can reach it, so it runs in development mode only.
 */
export function loadConfig(env: Env): DemoConfig {
  if (envEnum(env, 'PUSH_MODE', ['development', 'production'] as const, 'production') !== 'development') {
    throw new ConfigError('PUSH_MODE', 'the demo server acts with an app API key for any caller; it runs only when PUSH_MODE=development');
  }
  const common = loadCommonConfig(env);
  const apiKey = envString(env, 'DEMO_API_KEY', 'demo-key');
  if (apiKey === '') throw new ConfigError('DEMO_API_KEY', 'must not be empty');
  return {
    mode: common.mode,
    logLevel: common.logLevel,
    host: common.host,
    port: envPort(env, 'DEMO_PORT', 8088),
    authUrl: envUrl(env, 'AUTH_URL', 'http://127.0.0.1:8081', ['http:', 'https:']),
    collectorUrl: envUrl(env, 'COLLECTOR_URL', 'http://127.0.0.1:8080', ['http:', 'https:']),
    apiKey,
  };
}
