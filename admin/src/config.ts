import { envInt, envPort, loadCommonConfig, type CommonConfig, type Env } from '../../platform/config.js';
import { loadStatusConfig, type StatusConfig } from './statusConfig.js';

/** The admin service: the operator API and dashboard (single instance). */
export interface AdminConfig extends CommonConfig {
  /** Operator API and dashboard. Default 8082 (ADMIN_PORT), the contract's operator address. */
  port: number;
  /** Replays running at once. Default 4. */
  replayMaxRunning: number;
  /** Longest time range one replay may cover. Default 168 hours. */
  replayMaxRangeHours: number;
  /** Status API and dashboard (statusConfig.ts). */
  status: StatusConfig;
}

export function loadConfig(env: Env): AdminConfig {
  return {
    ...loadCommonConfig(env),
    port: envPort(env, 'ADMIN_PORT', 8082),
    replayMaxRunning: envInt(env, 'REPLAY_MAX_RUNNING', 4, { min: 1, max: 100 }),
    replayMaxRangeHours: envInt(env, 'REPLAY_MAX_RANGE_HOURS', 168, { min: 1, max: 24 * 365 }),
    status: loadStatusConfig(env),
  };
}
