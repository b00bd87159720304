/** Who is calling: the result of authentication, the subject of authorization and rate limits. */
export interface Principal {
  /** An API key's `principal`, an OAuth token's `sub` (or client id), or `anonymous`. */
  id: string;
  kind: "apiKey" | "oauth" | "anonymous";
  /** OAuth scopes granted by the token; empty for API keys and anonymous callers. */
  scopes: string[];
}

/** The caller when no authentication is configured (loopback, or explicitly allowed on other addresses). */
export const ANONYMOUS: Principal = Object.freeze({
  id: "anonymous",
  kind: "anonymous",
  scopes: [],
}) as Principal;
