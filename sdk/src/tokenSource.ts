import type { TokenGrant } from './options.js';
import { tokenExpiresAt } from './tokenExpiry.js';

/**
 * The current token and when to renew it: shortly before its `exp`, or
 * because the server said it expired. Renewal goes through the app's
 * `getToken`; without one the token is used until it is refused.
 */
export interface TokenSource {
  readonly token: string;
  readonly canRefresh: boolean;
  /** The server said the token expired: the next attempt must renew it. */
  markExpired(): void;
  /** Whether to call `getToken` before the next attempt. */
  shouldRefresh(): boolean;
  /** Whether connecting with the current token is pointless (renewal due, or past `exp`). */
  unusable(): boolean;
  /** Calls `getToken`; resolves with the node list it returned, if any. Throws when it fails. */
  refresh(): Promise<string[] | undefined>;
}

export function createTokenSource(initial: string, getToken: (() => Promise<TokenGrant> | TokenGrant) | undefined, marginMs: number): TokenSource {
  let token = initial;
  let expired = false;
  const expiresWithin = (ms: number) => {
    const exp = tokenExpiresAt(token);
    return exp !== undefined && exp - Date.now() <= ms;
  };
  return {
    get token() {
      return token;
    },
    canRefresh: getToken !== undefined,
    markExpired() {
      expired = true;
    },
    shouldRefresh: () => getToken !== undefined && (expired || expiresWithin(marginMs)),
    unusable: () => expired || expiresWithin(0),
    async refresh() {
      const grant: TokenGrant | undefined = await getToken!();
      const { token: next, nodes }: { token?: unknown; nodes?: unknown } = typeof grant === 'string' ? { token: grant } : (grant ?? {});
      if (typeof next !== 'string' || next === '') throw new TypeError('getToken returned no token');
      token = next;
      expired = false;
      const valid = Array.isArray(nodes) ? nodes.filter((n): n is string => typeof n === 'string' && /^wss?:\/\//.test(n)) : [];
      return valid.length > 0 ? valid : undefined;
    },
  };
}
