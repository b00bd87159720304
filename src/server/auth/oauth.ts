/**
 * OAuth resource-server mode (MCP authorization spec): the gateway accepts access tokens issued for it by
 * an authorization server, checks them locally against the server's JWKS, and advertises where to get
 * one through RFC 9728 protected-resource metadata and the `WWW-Authenticate` challenge.
 */
import { createRemoteJWKSet, type JWTPayload, jwtVerify } from "jose";
import type { OAuthOptions } from "../../config/security-schema.ts";
import { ErrorCode, GatewayError } from "../../errors.ts";
import type { Principal } from "./principal.ts";

/** RFC 6750 error codes of a Bearer challenge. */
export type BearerErrorCode = "invalid_request" | "invalid_token" | "insufficient_scope";

/** RFC 9728 protected-resource metadata. */
interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  bearer_methods_supported: string[];
  scopes_supported?: string[];
}

export interface OAuthVerifier {
  /**
   * The principal of a valid token. Throws GatewayError Unauthorized (`data.bearerError: "invalid_token"`)
   * for a bad token, Forbidden (`"insufficient_scope"`) when required scopes are missing, and
   * UpstreamUnavailable when the authorization server's keys cannot be fetched.
   */
  verifyToken(token: string): Promise<Principal>;
  protectedResourceMetadata(): ProtectedResourceMetadata;
  /** Absolute URL of the metadata document, served at `resourceMetadataPath`. */
  readonly resourceMetadataUrl: string;
  /** `WWW-Authenticate` value for a 401/403. */
  wwwAuthenticate(error?: BearerErrorCode): string;
}

export interface OAuthVerifierOptions {
  /** Accepted clock skew for `exp`/`nbf` (default 30 s). */
  clockToleranceSec?: number;
  /** Time limit for fetching metadata and keys (default 5 s). */
  fetchTimeoutMs?: number;
}

/** Signature algorithms of public-key JWKS; symmetric and `none` are never accepted. */
const ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
];

export function createOAuthVerifier(
  options: OAuthOptions,
  { clockToleranceSec = 30, fetchTimeoutMs = 5_000 }: OAuthVerifierOptions = {},
): OAuthVerifier {
  const resourceMetadataUrl = new URL(options.resourceMetadataPath, options.audience).href;
  let jwks: Promise<ReturnType<typeof createRemoteJWKSet>> | undefined;
  const keys = () =>
    (jwks ??= resolveJwksUri(options, fetchTimeoutMs).then(
      (uri) => createRemoteJWKSet(new URL(uri), { timeoutDuration: fetchTimeoutMs }),
      (err: unknown) => {
        jwks = undefined; // a failed discovery is retried with the next token, not cached
        throw err;
      },
    ));

  const wwwAuthenticate = (error?: BearerErrorCode) =>
    bearerChallenge({
      resource_metadata: resourceMetadataUrl,
      ...(error ? { error } : {}),
      ...(error === "insufficient_scope" && options.requiredScopes.length
        ? { scope: options.requiredScopes.join(" ") }
        : {}),
    });

  return {
    resourceMetadataUrl,
    wwwAuthenticate,
    protectedResourceMetadata: () => ({
      resource: options.audience,
      authorization_servers: options.authorizationServers,
      bearer_methods_supported: ["header"],
      ...(options.requiredScopes.length ? { scopes_supported: options.requiredScopes } : {}),
    }),
    async verifyToken(token) {
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, await keys(), {
          issuer: options.issuer,
          audience: options.audience,
          algorithms: ALGORITHMS,
          requiredClaims: ["exp"],
          clockTolerance: clockToleranceSec,
        }));
      } catch (err) {
        throw tokenError(err, options);
      }
      const id = stringClaim(payload.sub) ?? stringClaim(payload.client_id);
      if (!id) throw invalidToken("the token has neither a sub nor a client_id claim");
      const scopes = scopesOf(payload);
      const missing = options.requiredScopes.filter((s) => !scopes.includes(s));
      if (missing.length) {
        throw new GatewayError(
          ErrorCode.Forbidden,
          `the token of "${id}" lacks the required scope${missing.length > 1 ? "s" : ""} ${missing.join(", ")}`,
          { data: { bearerError: "insufficient_scope" } },
        );
      }
      const expiresAt = ((payload.exp as number) + clockToleranceSec) * 1000;
      return { id, kind: "oauth", scopes, expiresAt };
    },
  };
}

/** A `Bearer` challenge with quoted parameters (values never contain quotes: URLs and RFC 6749 scopes). */
export function bearerChallenge(params: Record<string, string>): string {
  const parts = Object.entries(params).map(([k, v]) => `${k}="${v.replace(/["\\]/g, "")}"`);
  return parts.length ? `Bearer ${parts.join(", ")}` : "Bearer";
}

/** Scopes from `scope` (space-separated, RFC 8693/9068) or `scp` (array or string, Azure AD / Okta). */
function scopesOf(payload: JWTPayload): string[] {
  const raw = payload.scope ?? payload.scp;
  if (typeof raw === "string") return raw.split(" ").filter(Boolean);
  if (Array.isArray(raw)) return raw.filter((s): s is string => typeof s === "string");
  return [];
}

function stringClaim(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

function invalidToken(message: string, cause?: unknown): GatewayError {
  return new GatewayError(ErrorCode.Unauthorized, message, {
    data: { bearerError: "invalid_token" },
    cause,
  });
}

/** jose's failure → a clear reason; failing to fetch the keys is the authorization server's trouble, not the token's. */
function tokenError(err: unknown, options: OAuthOptions): GatewayError {
  if (err instanceof GatewayError) return err;
  const code = (err as { code?: unknown })?.code;
  switch (code) {
    case "ERR_JWT_EXPIRED":
      return invalidToken("the token has expired", err);
    case "ERR_JWT_CLAIM_VALIDATION_FAILED": {
      const claim = (err as { claim?: string }).claim;
      if (claim === "aud") return invalidToken(`the token's audience is not ${options.audience}`, err);
      if (claim === "iss") return invalidToken(`the token's issuer is not ${options.issuer}`, err);
      return invalidToken(`the token's ${claim} claim is invalid: ${(err as Error).message}`, err);
    }
    case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
      return invalidToken("the token's signature is invalid", err);
    case "ERR_JWKS_NO_MATCHING_KEY":
      return invalidToken(`the token is not signed by a key of ${options.issuer}`, err);
    case "ERR_JOSE_ALG_NOT_ALLOWED":
      return invalidToken("the token's signature algorithm is not allowed", err);
    case "ERR_JWKS_TIMEOUT":
    case "ERR_JWKS_INVALID":
    case "ERR_JOSE_GENERIC":
      return keysUnavailable(err, options);
    default:
      if (typeof code === "string" && code.startsWith("ERR_J"))
        return invalidToken(`the token is not a valid JWT: ${(err as Error).message}`, err);
      return keysUnavailable(err, options);
  }
}

function keysUnavailable(err: unknown, options: OAuthOptions): GatewayError {
  const reason = err instanceof Error ? err.message : String(err);
  return new GatewayError(
    ErrorCode.UpstreamUnavailable,
    `cannot fetch the signing keys of ${options.issuer}${options.jwksUri ? ` from ${options.jwksUri}` : ""}: ${reason}`,
    { cause: err },
  );
}

/** The configured JWKS URI, or the one in the issuer's metadata (RFC 8414, then OpenID Connect discovery). */
async function resolveJwksUri(options: OAuthOptions, timeoutMs: number): Promise<string> {
  if (options.jwksUri) return options.jwksUri;
  const issuer = new URL(options.issuer);
  const path = issuer.pathname.replace(/\/$/, "");
  const candidates = new Set([
    new URL(`/.well-known/oauth-authorization-server${path}`, issuer).href,
    new URL(`/.well-known/openid-configuration${path}`, issuer).href,
    new URL(`${path}/.well-known/openid-configuration`, issuer).href,
  ]);
  const failures: string[] = [];
  for (const url of candidates) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: "error" });
      if (!response.ok) {
        failures.push(`${url}: HTTP ${response.status}`);
        continue;
      }
      const metadata = (await response.json()) as { issuer?: unknown; jwks_uri?: unknown };
      if (metadata.issuer !== options.issuer) {
        failures.push(`${url}: its issuer is ${JSON.stringify(metadata.issuer)}`);
        continue;
      }
      if (typeof metadata.jwks_uri === "string") return metadata.jwks_uri;
      failures.push(`${url}: no jwks_uri`);
    } catch (err) {
      failures.push(`${url}: ${(err as Error).message}`);
    }
  }
  throw new GatewayError(
    ErrorCode.UpstreamUnavailable,
    `cannot discover the JWKS of ${options.issuer} (set security.auth.oauth.jwksUri): ${failures.join("; ")}`,
  );
}
