/**
 * The `exp` claim of a JWT, in ms since epoch, read without verifying the
 * signature (the server verifies; the client only wants to know when to ask
 * for a new token). Undefined if the token is not a readable JWT.
 */
export function tokenExpiresAt(token: string): number | undefined {
  const part = token.split('.')[1];
  if (!part) return undefined;
  try {
    const b64 = part.replace(/-/g, '+').replace(/_/g, '/');
    const json = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === 'number' && Number.isFinite(exp) ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}
