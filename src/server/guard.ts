/**
 * The door of the HTTP transports: DNS-rebinding protection (Origin/Host), then authentication.
 * One decision per request, from its headers and whether the peer is on this machine.
 */
import type { GatewayOptions } from "../config/schema.ts";
import type { AuthOptions } from "../config/security-schema.ts";
import { type Authenticator, createAuthenticator } from "./auth/authenticate.ts";
import type { OAuthVerifier } from "./auth/oauth.ts";
import type { Principal } from "./auth/principal.ts";
import { checkOriginAndHost } from "./origin.ts";

type GuardResult =
  | { ok: true; principal: Principal }
  | { ok: false; status: 401 | 403 | 503; message: string; headers?: Record<string, string> };

export type Guard = (headers: Pick<Headers, "get">, remote: { loopback: boolean }) => Promise<GuardResult>;

export interface GuardOptions {
  listenHost: string;
  gateway: Pick<GatewayOptions, "allowedOrigins" | "allowedHosts">;
  auth: AuthOptions;
  oauth?: OAuthVerifier | undefined;
}

export function createGuard(options: GuardOptions): Guard {
  const authenticate: Authenticator = createAuthenticator(options.auth, { oauth: options.oauth });
  const originOptions = {
    listenHost: options.listenHost,
    allowedOrigins: options.gateway.allowedOrigins,
    allowedHosts: options.gateway.allowedHosts,
  };
  return async (headers, remote) => {
    const origin = checkOriginAndHost(
      { origin: headers.get("origin"), host: headers.get("host") },
      originOptions,
    );
    if (!origin.ok) return { ok: false, status: origin.status, message: origin.reason };
    try {
      const auth = await authenticate(headers, remote);
      if (auth.ok) return auth;
      return {
        ok: false,
        status: auth.status,
        message: auth.message,
        ...(auth.wwwAuthenticate ? { headers: { "www-authenticate": auth.wwwAuthenticate } } : {}),
      };
    } catch (err) {
      // The authorization server's keys could not be fetched: not the client's fault.
      return { ok: false, status: 503, message: `cannot verify the token now: ${(err as Error).message}` };
    }
  };
}
