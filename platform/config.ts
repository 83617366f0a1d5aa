/**
 * Environment parsing shared by every service's `config.ts`.
 * Each reader names the variable in its error so a bad deployment fails fast
 * with a message an operator can act on.
 */
export type Env = Record<string, string | undefined>;

export class ConfigError extends Error {
  readonly code = 'CONFIG_INVALID';
  constructor(
    readonly variable: string,
    message: string,
  ) {
    super(`${variable}: ${message}`);
    this.name = 'ConfigError';
  }
}

function raw(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}

export function envString(env: Env, name: string, fallback: string): string {
  return raw(env, name) ?? fallback;
}

export function envOptionalString(env: Env, name: string): string | undefined {
  return raw(env, name);
}

export function envInt(env: Env, name: string, fallback: number, bounds: { min?: number; max?: number } = {}): number {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!/^-?\d+$/.test(value)) throw new ConfigError(name, `expected an integer, got "${value}"`);
  const n = Number(value);
  if (bounds.min !== undefined && n < bounds.min) throw new ConfigError(name, `must be >= ${bounds.min}, got ${n}`);
  if (bounds.max !== undefined && n > bounds.max) throw new ConfigError(name, `must be <= ${bounds.max}, got ${n}`);
  return n;
}

export function envPort(env: Env, name: string, fallback: number): number {
  return envInt(env, name, fallback, { min: 0, max: 65535 });
}

export function envBool(env: Env, name: string, fallback: boolean): boolean {
  const value = raw(env, name)?.toLowerCase();
  if (value === undefined) return fallback;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new ConfigError(name, `expected true/false, got "${value}"`);
}

export function envList(env: Env, name: string, fallback: string[]): string[] {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  const items = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  if (items.length === 0) throw new ConfigError(name, 'expected a comma-separated list');
  return items;
}

export function envEnum<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const value = raw(env, name);
  if (value === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new ConfigError(name, `expected one of ${allowed.join(', ')}, got "${value}"`);
  }
  return value as T;
}

export function envUrl(env: Env, name: string, fallback: string, protocols: string[]): string {
  const value = raw(env, name) ?? fallback;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(name, `not a valid URL: "${value}"`);
  }
  if (!protocols.includes(url.protocol)) {
    throw new ConfigError(name, `expected a ${protocols.join(' or ')} URL, got "${value}"`);
  }
  return value;
}

/** Kafka broker list "host:port,host:port". */
export function envBrokers(env: Env, name: string, fallback: string): string[] {
  const brokers = envList(env, name, [fallback]);
  for (const b of brokers) {
    if (!/^[^\s:]+:\d{1,5}$/.test(b)) throw new ConfigError(name, `expected host:port, got "${b}"`);
  }
  return brokers;
}

/** Node ids become Kafka topic names and Redis keys: keep them to a safe alphabet. */
export function envIdentifier(env: Env, name: string, fallback: string): string {
  const value = raw(env, name) ?? fallback;
  if (!/^[A-Za-z0-9._-]{1,64}$/.test(value)) {
    throw new ConfigError(name, `expected 1-64 characters of [A-Za-z0-9._-], got "${value}"`);
  }
  return value;
}

export type Mode = 'development' | 'production';

/** Settings every service shares: mode, log level, infrastructure addresses. */
export interface CommonConfig {
  mode: Mode;
  logLevel: string;
  host: string;
  kafkaBrokers: string[];
  redisUrl: string;
  mongoUrl: string;
  mongoDb: string;
  operatorKey: string;
  /** Prefix of every Kafka topic and consumer group. Default empty. */
  topicPrefix: string;
  /** Prefix of every Redis key (ioredis keyPrefix). Default empty. */
  redisKeyPrefix: string;
  /** Failed operator authentications per source address before 429 (OPERATOR_AUTH_MAX_FAILURES, default 10) within OPERATOR_AUTH_WINDOW_SECONDS (default 60). */
  operatorAuth: { maxFailures: number; windowMs: number };
  /** Failed API-key authentications per source address before 429 (API_KEY_AUTH_MAX_FAILURES, default 100) within API_KEY_AUTH_WINDOW_SECONDS (default 60). */
  apiKeyAuth: { maxFailures: number; windowMs: number };
}

const DEV_OPERATOR_KEY = 'operator-key';

/**
 * Production is the default: a service started with nothing set must not come
 * up with the well-known development keys and the demo app. `npm start` and
 * the test harness ask for development mode explicitly.
 */
export function loadCommonConfig(env: Env): CommonConfig {
  const mode = envEnum(env, 'PUSH_MODE', ['development', 'production'] as const, 'production');
  const operatorKey = envString(env, 'OPERATOR_KEY', mode === 'development' ? DEV_OPERATOR_KEY : '');
  if (mode === 'production' && operatorKey === '') {
    throw new ConfigError(
      'OPERATOR_KEY',
      'required in production mode (the default PUSH_MODE): set it to a secret, or set PUSH_MODE=development for a local stack',
    );
  }
  if (mode === 'production' && operatorKey === DEV_OPERATOR_KEY) {
    throw new ConfigError('OPERATOR_KEY', `the development key "${DEV_OPERATOR_KEY}" is refused in production mode; set a secret`);
  }
  const host = devBindChecked(env, mode, 'BIND_HOST', envString(env, 'BIND_HOST', '127.0.0.1'));
  return {
    mode,
    logLevel: envEnum(env, 'LOG_LEVEL', ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const, 'info'),
    host,
    kafkaBrokers: envBrokers(env, 'KAFKA_BROKERS', '127.0.0.1:9092'),
    redisUrl: envUrl(env, 'REDIS_URL', 'redis://127.0.0.1:6379', ['redis:', 'rediss:']),
    mongoUrl: envUrl(env, 'MONGO_URL', 'mongodb://127.0.0.1:27017', ['mongodb:', 'mongodb+srv:']),
    mongoDb: envIdentifier(env, 'MONGO_DB', 'push'),
    operatorKey,
    topicPrefix: envPrefix(env, 'KAFKA_TOPIC_PREFIX'),
    redisKeyPrefix: envPrefix(env, 'REDIS_KEY_PREFIX'),
    operatorAuth: {
      maxFailures: envInt(env, 'OPERATOR_AUTH_MAX_FAILURES', 10, { min: 1, max: 1_000_000 }),
      windowMs: envInt(env, 'OPERATOR_AUTH_WINDOW_SECONDS', 60, { min: 1, max: 86_400 }) * 1000,
    },
    apiKeyAuth: {
      maxFailures: envInt(env, 'API_KEY_AUTH_MAX_FAILURES', 100, { min: 1, max: 1_000_000 }),
      windowMs: envInt(env, 'API_KEY_AUTH_WINDOW_SECONDS', 60, { min: 1, max: 86_400 }) * 1000,
    },
  };
}

/** A namespace prefix for topic names or keys (Kafka allows [A-Za-z0-9._-]; ':' is the usual Redis separator). */
function envPrefix(env: Env, name: string): string {
  const value = raw(env, name) ?? '';
  const chars = name.startsWith('REDIS') ? 'A-Za-z0-9._:-' : 'A-Za-z0-9._-';
  if (!new RegExp(`^[${chars}]{0,100}$`).test(value)) throw new ConfigError(name, `expected up to 100 characters of [${chars}], got "${value}"`);
  return value;
}

/**
 * Development mode has well-known keys and a demo app: it listens on loopback
 * only, unless whoever runs it says otherwise with ALLOW_DEV_PUBLIC_BIND=true
 * (a container's own network, say). For every address a service listens on
 * (`variable` names the setting it came from); returns `host` when allowed.
 */
export function devBindChecked(env: Env, mode: Mode, variable: string, host: string): string {
  if (mode === 'development' && !isLoopbackHost(host) && !envBool(env, 'ALLOW_DEV_PUBLIC_BIND', false)) {
    throw new ConfigError(
      variable,
      `"${host}" is not a loopback address, and development mode (demo app, default keys) listens on loopback only; use PUSH_MODE=production with real keys, or set ALLOW_DEV_PUBLIC_BIND=true to expose it anyway`,
    );
  }
  return host;
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: addresses no other machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, '');
  if (h === 'localhost' || h.endsWith('.localhost') || h === '::1' || h === '0:0:0:0:0:0:0:1') return true;
  const v4 = h.startsWith('::ffff:') ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}
