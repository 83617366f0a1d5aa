import { envInt, envPort, loadCommonConfig, type CommonConfig, type Env } from '../../platform/config.js';
import { loadStatusConfig, type StatusConfig } from './statusConfig.js';

/** The admin service: the operator API and dashboard (single instance). */
export interface AdminConfig extends CommonConfig {
  /** Operator API and dashboard: ADMIN_PORT, else DISPATCHER_PORT (its name before the admin service), else 8082. */
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
    // The contract's operator address: DISPATCHER_PORT named it while the dispatcher served the
    // operator API, so a setup that moved it with that variable keeps it where it put it.
    port: env.ADMIN_PORT === undefined && env.DISPATCHER_PORT !== undefined ? envPort(env, 'DISPATCHER_PORT', 8082) : envPort(env, 'ADMIN_PORT', 8082),
    replayMaxRunning: envInt(env, 'REPLAY_MAX_RUNNING', 4, { min: 1, max: 100 }),
    replayMaxRangeHours: envInt(env, 'REPLAY_MAX_RANGE_HOURS', 168, { min: 1, max: 24 * 365 }),
    status: loadStatusConfig(env),
  };
}
