import type { OptionValue } from './args.js';

/** API answers are JSON read off the wire; commands pick the fields they print. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Json = any;

/** Exit codes: 0 done, 1 the API refused or failed, 2 bad arguments, 3 a service could not be reached. */
export const EXIT = { OK: 0, API: 1, USAGE: 2, UNREACHABLE: 3 } as const;

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export interface CliEnv {
  PUSH_ADMIN_URL?: string;
  PUSH_COLLECTOR_URL?: string;
  PUSH_OPERATOR_KEY?: string;
  PUSH_APP_KEY?: string;
}

/** Where the CLI talks to and with which keys, from options, then env, then local defaults. */
export interface Target {
  adminUrl: string;
  collectorUrl: string;
  json: boolean;
  timeoutMs: number;
  operatorKey(): string;
  appKey(): string;
}

const DEV_OPERATOR_KEY = 'operator-key';
const DEV_APP_KEY = 'demo-key';

export function isLoopback(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\./.test(host);
}

function checkUrl(url: string, what: string): string {
  try {
    const u = new URL(url);
    if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error();
  } catch {
    throw new CliError(`${what} must be an http(s) URL, got "${url}"`, EXIT.USAGE);
  }
  return url.replace(/\/+$/, '');
}

export function resolveTarget(options: Record<string, OptionValue | undefined>, env: CliEnv): Target {
  const adminUrl = checkUrl(String(options.url ?? env.PUSH_ADMIN_URL ?? 'http://127.0.0.1:8082'), '--url / PUSH_ADMIN_URL');
  const collectorUrl = checkUrl(String(options['collector-url'] ?? env.PUSH_COLLECTOR_URL ?? 'http://127.0.0.1:8080'), '--collector-url / PUSH_COLLECTOR_URL');
  return {
    adminUrl,
    collectorUrl,
    json: options.json === true,
    timeoutMs: Number(options.timeout ?? 10_000),
    operatorKey() {
      const key = (options.key as string | undefined) ?? env.PUSH_OPERATOR_KEY;
      if (key) return key;
      // The development default only ever goes to a service on this machine.
      if (isLoopback(adminUrl)) return DEV_OPERATOR_KEY;
      throw new CliError(`an operator key is required for ${adminUrl}: set PUSH_OPERATOR_KEY or pass --key`, EXIT.USAGE);
    },
    appKey() {
      const key = (options['app-key'] as string | undefined) ?? env.PUSH_APP_KEY;
      if (key) return key;
      if (isLoopback(collectorUrl)) return DEV_APP_KEY;
      throw new CliError(`an app API key is required for ${collectorUrl}: set PUSH_APP_KEY or pass --app-key`, EXIT.USAGE);
    },
  };
}

/** One JSON request; API errors become CliErrors with the service's code and message. */
export async function request(
  t: Target,
  base: string,
  path: string,
  { method = 'GET', key, body }: { method?: string; key: string; body?: unknown },
): Promise<Json> {
  const url = `${base}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${key}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(t.timeoutMs),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const why = (err as Error).name === 'TimeoutError' ? `no answer within ${t.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw new CliError(`cannot reach ${url}: ${why}`, EXIT.UNREACHABLE);
  }
  const text = await res.text();
  let parsed: Json;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = text;
  }
  if (!res.ok) {
    const e = parsed?.error;
    const msg = e ? `${e.code}: ${e.message}` : `HTTP ${res.status} ${text.slice(0, 200)}`;
    throw new CliError(`${method} ${path} failed with ${res.status} ${msg}`, EXIT.API, parsed);
  }
  return parsed;
}

export const admin = (t: Target, path: string, opts: { method?: string; body?: unknown } = {}) =>
  request(t, t.adminUrl, path, { ...opts, key: t.operatorKey() });
export const collector = (t: Target, path: string, opts: { method?: string; body?: unknown } = {}) =>
  request(t, t.collectorUrl, path, { ...opts, key: t.appKey() });

/** A plain text table: left-aligned columns, a header row, '-' for empty cells. */
export function table(headers: string[], rows: unknown[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === undefined || c === null || c === '' ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

export const num = (n: unknown, digits = 0) => (typeof n === 'number' && Number.isFinite(n) ? n.toFixed(digits) : '-');

/** Prints `body` as JSON with --json, else the human rendering. */
export function print(t: Target, body: unknown, human: () => string): void {
  process.stdout.write(t.json ? JSON.stringify(body, null, 2) + '\n' : human());
}
