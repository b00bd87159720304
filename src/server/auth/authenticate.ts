/**
 * Who is calling: one decision per HTTP request from its headers and whether the peer is on this machine.
 * With no authentication configured only loopback clients are served (as the anonymous principal), which
 * `assertSafeBind` enforces at startup; with API keys or OAuth configured every request must authenticate.
 */
import type { AuthOptions } from "../../config/security-schema.ts";
import { ErrorCode, GatewayError } from "../../errors.ts";
import { createApiKeyVerifier, readCredential } from "./api-keys.ts";
import { isLoopbackHost } from "./loopback.ts";
import { type BearerErrorCode, bearerChallenge, createOAuthVerifier, type OAuthVerifier } from "./oauth.ts";
import { ANONYMOUS, type Principal } from "./principal.ts";

type AuthResult =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401 | 403; wwwAuthenticate?: string; message: string };

/**
 * Resolves to a verdict for bad or missing credentials; rejects (GatewayError UpstreamUnavailable) only when
 * the authorization server's keys cannot be fetched, which deserves a 503 rather than a 401.
 */
export type Authenticator = (
  headers: Pick<Headers, "get">,
  remote: { loopback: boolean },
) => Promise<AuthResult>;

export interface AuthenticatorDeps {
  /** The verifier that also serves the metadata document; made from `options.oauth` when absent. */
  oauth?: OAuthVerifier | undefined;
}

export function createAuthenticator(options: AuthOptions, deps: AuthenticatorDeps = {}): Authenticator {
  const apiKeys = createApiKeyVerifier(options.apiKeys);
  const oauth = deps.oauth ?? (options.oauth ? createOAuthVerifier(options.oauth) : undefined);
  const configured = apiKeys.size > 0 || oauth !== undefined;
  const accepted = [
    oauth && '"Authorization: Bearer <access token>"',
    apiKeys.size > 0 && '"Authorization: Bearer <API key>" or "X-API-Key: <API key>"',
  ]
    .filter(Boolean)
    .join(" or ");
  const challenge = (error?: BearerErrorCode) =>
    oauth
      ? oauth.wwwAuthenticate(error)
      : bearerChallenge({ realm: "toolgate", ...(error ? { error } : {}) });
  const unauthorized = (message: string, error?: BearerErrorCode): AuthResult => ({
    ok: false,
    status: 401,
    wwwAuthenticate: challenge(error),
    message,
  });

  return async (headers, remote) => {
    if (!configured) {
      if (remote.loopback || options.allowUnauthenticatedNonLoopback)
        return { ok: true, principal: ANONYMOUS };
      return {
        ok: false,
        status: 403,
        message:
          "no authentication is configured, so only clients on this machine are served; configure security.auth.apiKeys or security.auth.oauth",
      };
    }
    const credential = readCredential(headers);
    if (credential.kind === "none") {
      return unauthorized(`authentication required: send ${accepted}`);
    }
    if (credential.kind === "malformed") return unauthorized(credential.reason, "invalid_request");
    const byKey = apiKeys.verifyApiKey(credential.token);
    if (byKey) return { ok: true, principal: byKey };
    if (!oauth || credential.from !== "bearer") {
      return unauthorized("invalid API key", "invalid_token");
    }
    try {
      return { ok: true, principal: await oauth.verifyToken(credential.token) };
    } catch (err) {
      if (!(err instanceof GatewayError)) throw err;
      if (err.code === ErrorCode.Unauthorized) return unauthorized(err.message, "invalid_token");
      if (err.code === ErrorCode.Forbidden) {
        return {
          ok: false,
          status: 403,
          wwwAuthenticate: challenge("insufficient_scope"),
          message: err.message,
        };
      }
      throw err;
    }
  };
}

/**
 * Refuse to serve a non-loopback address without authentication: anyone who can reach it could call every
 * tool. Throws GatewayError(ConfigInvalid).
 */
export function assertSafeBind(host: string, options: AuthOptions): void {
  if (isLoopbackHost(host)) return;
  if (options.apiKeys.length > 0 || options.oauth !== undefined || options.allowUnauthenticatedNonLoopback)
    return;
  throw new GatewayError(
    ErrorCode.ConfigInvalid,
    `refusing to listen on ${host} without authentication: anyone who can reach it could call every tool. ` +
      "Configure security.auth.apiKeys or security.auth.oauth, listen on 127.0.0.1, or set " +
      "security.auth.allowUnauthenticatedNonLoopback: true if a trusted proxy in front authenticates clients",
  );
}
