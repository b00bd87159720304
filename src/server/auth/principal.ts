/** Who is calling: the result of authentication, the subject of authorization and rate limits. */
export interface Principal {
  /** An API key's `principal`, an OAuth token's `sub` (or client id), or `anonymous`. */
  id: string;
  kind: "apiKey" | "oauth" | "anonymous";
  /** OAuth scopes granted by the token; empty for API keys and anonymous callers. */
  scopes: string[];
  /**
   * When the credentials stop being accepted (epoch ms): an OAuth token's `exp` plus the accepted clock skew.
   * Absent for credentials that do not expire (API keys, anonymous).
   */
  expiresAt?: number;
}

/** The caller when no authentication is configured (loopback, or explicitly allowed on other addresses). */
export const ANONYMOUS: Principal = Object.freeze({
  id: "anonymous",
  kind: "anonymous",
  scopes: [],
}) as Principal;

/** The longest delay a Node timer takes (about 24.8 days); a later expiry is re-armed from there. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Runs `end` once `principal`'s credentials expire, for what outlives the request that authenticated it: a
 * WebSocket session or a notification stream would otherwise go on with a token every new request refuses.
 * Returns what cancels it; nothing is armed for credentials without an expiry.
 */
export function atExpiry(principal: Principal, end: () => void): () => void {
  const { expiresAt } = principal;
  if (expiresAt === undefined) return () => {};
  let timer: NodeJS.Timeout | undefined;
  const arm = () => {
    const left = expiresAt - Date.now();
    timer = setTimeout(left > MAX_TIMER_MS ? arm : end, Math.max(0, Math.min(left, MAX_TIMER_MS))).unref();
  };
  arm();
  return () => clearTimeout(timer);
}
