import type { Duplex } from 'node:stream';
import type { App } from '../../store/apps.js';
import type { Logger } from '../../platform/logger.js';
import type { TokenClaims } from '../../protocol/tokens.js';
import { TokenError, type TokenVerifier } from './verifyToken.js';

const STATUS_TEXT: Record<number, string> = { 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 429: 'Too Many Requests' };

/** Why a handshake (or a session check) is refused: the HTTP answer, and the outcome counted for it. */
export interface Refusal {
  status: number;
  code: string;
  message: string;
  retryAfterSeconds?: number;
  /** `push_handshakes_total{outcome}`; none when the refusal is not counted. */
  outcome?: string;
}

export type Admission = { ok: true; claims: TokenClaims; app: App } | ({ ok: false } & Refusal);

export interface AdmitDeps {
  verify: TokenVerifier;
  appOf: (id: string) => Promise<App | undefined>;
  logger: Logger;
}

/**
 * What `/v1/ws` and `/v1/session` both check: the token (verified locally), its app, and the
 * page's origin against the app's allowed origins. A failing app lookup is the store's fault,
 * not the token's: 503, which clients retry (a 401 makes the SDK give up for good).
 */
export async function admit(deps: AdmitDeps, token: string, origin: string | undefined): Promise<Admission> {
  let claims: TokenClaims;
  try {
    claims = await deps.verify(token);
  } catch (err) {
    const e = err instanceof TokenError ? err : new TokenError('TOKEN_INVALID', 'invalid token');
    return { ok: false, status: e.code === 'KEYS_UNAVAILABLE' ? 503 : 401, code: e.code, message: e.message, outcome: e.code.toLowerCase() };
  }
  let app: App | undefined;
  try {
    app = await deps.appOf(claims.app);
  } catch (err) {
    deps.logger.warn({ err: (err as Error).message, app: claims.app }, 'app lookup failed; refused with 503');
    return { ok: false, status: 503, code: 'UNAVAILABLE', message: 'cannot look up the app now; retry later', retryAfterSeconds: 2, outcome: 'unavailable' };
  }
  if (!app) return { ok: false, status: 401, code: 'TOKEN_INVALID', message: 'token names an unknown app', outcome: 'unknown_app' };
  if (origin && !app.allowedOrigins.includes('*') && !app.allowedOrigins.includes(origin)) {
    return { ok: false, status: 403, code: 'ORIGIN_NOT_ALLOWED', message: `origin ${origin} is not allowed for app ${app._id}`, outcome: 'origin' };
  }
  return { ok: true, claims, app };
}

/**
 * Answers a handshake with an HTTP error and closes the connection. Node hands an upgrade
 * over half-open with no timeout: a peer that never closes its side would keep the socket
 * (and a file descriptor) forever, so it is destroyed `lingerMs` after the answer.
 */
export function refuseHandshake(lingerMs: number, socket: Duplex, status: number, code: string, message: string, retryAfterSeconds?: number): void {
  const body = JSON.stringify({ error: { code, message } });
  const timer = setTimeout(() => socket.destroy(), lingerMs).unref();
  socket.once('close', () => clearTimeout(timer));
  socket.resume(); // whatever the peer still sends is read and dropped, so its close is seen
  socket.end(
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? 'Service Unavailable'}\r\n` +
      (retryAfterSeconds === undefined ? '' : `Retry-After: ${retryAfterSeconds}\r\n`) +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`,
  );
}
