/**
 * After a failed connect: ask the node over plain HTTP whether the token is
 * the problem. Browsers hide a refused handshake's status (the page sees only
 * close 1006), so this is the only way to tell "auth refused" from "network
 * down". See `GET /v1/session` in docs/protocol.md.
 */
export type SessionVerdict = { kind: 'ok' } | { kind: 'expired' } | { kind: 'refused'; code: string; message: string } | { kind: 'unknown' };

/** `ws://host:port/v1/ws` -> `http://host:port/v1/session`. */
export function sessionUrl(wsUrl: string, token: string): string {
  const u = new URL(wsUrl);
  u.protocol = u.protocol === 'wss:' ? 'https:' : 'http:';
  u.pathname = u.pathname.endsWith('/ws') ? `${u.pathname.slice(0, -3)}/session` : '/v1/session';
  u.search = '';
  u.searchParams.set('token', token);
  u.hash = '';
  return u.toString();
}

export async function checkSession(fetchFn: typeof globalThis.fetch | undefined, wsUrl: string, token: string, timeoutMs: number): Promise<SessionVerdict> {
  if (!fetchFn) return { kind: 'unknown' };
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const res = await fetchFn(sessionUrl(wsUrl, token), { signal: abort.signal, cache: 'no-store' });
    if (res.ok) return { kind: 'ok' };
    // 401: the token; 403: this page's origin is not allowed for the app. Retrying fixes neither.
    if (res.status !== 401 && res.status !== 403) return { kind: 'unknown' };
    const body = (await res.json().catch(() => ({}))) as { error?: { code?: unknown; message?: unknown } };
    const code = typeof body.error?.code === 'string' ? body.error.code : 'TOKEN_INVALID';
    if (code === 'TOKEN_EXPIRED') return { kind: 'expired' };
    return { kind: 'refused', code, message: typeof body.error?.message === 'string' ? body.error.message : 'token refused' };
  } catch {
    // Network down, node gone, CORS, timeout: nothing learned about the token.
    return { kind: 'unknown' };
  } finally {
    clearTimeout(timer);
  }
}
