import { envInt, envList, envPort, envString, loadCommonConfig, ConfigError, type CommonConfig, type Env } from '../../platform/config.js';

export interface AuthConfig extends CommonConfig {
  port: number;
  /** Lifetime of issued tokens. Default 3600 s. */
  tokenTtlSeconds: number;
  /** Key of the `demo` app created in development mode. Default `demo-key`. */
  demoApiKey: string;
  /** Origins the demo app accepts. Default `*`. */
  demoOrigins: string[];
  /** Pusher URLs handed out when none has registered in Redis. Default none. */
  staticNodes: string[];
}

export function loadConfig(env: Env): AuthConfig {
  const common = loadCommonConfig(env);
  const demoApiKey = envString(env, 'DEMO_API_KEY', common.mode === 'development' ? 'demo-key' : '');
  if (common.mode === 'production' && demoApiKey === 'demo-key') {
    throw new ConfigError('DEMO_API_KEY', 'the default demo key is refused when PUSH_MODE=production');
  }
  return {
    ...common,
    port: envPort(env, 'AUTH_PORT', 8081),
    tokenTtlSeconds: envInt(env, 'TOKEN_TTL_SECONDS', 3600, { min: 10, max: 30 * 86400 }),
    demoApiKey,
    demoOrigins: envList(env, 'DEMO_ORIGINS', ['*']),
    staticNodes: envList(env, 'PUSHER_NODES', []),
  };
}
