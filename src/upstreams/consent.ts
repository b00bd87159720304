/**
 * Consent flows of per-principal upstreams, as the gateway's own routes run them (server/upstream-auth-routes.ts
 * is the HTTP side): start one for a principal (identified by the signed ticket of the URL a call returned,
 * or by the credentials the request authenticated with), then finish it at the callback, where the one-time
 * `state` names the flow and so the principal the tokens are stored under.
 */
import { LRUCache } from "lru-cache";
import { type AuthorizationBase, beginAuthorization, finishAuthorization } from "./auth/login.ts";
import type { UpstreamOAuth } from "./auth/oauth-provider.ts";
import type { UpstreamHandle } from "./handle.ts";
import { isPerPrincipal, type PoolPrincipal, type PrincipalPool, principalKey } from "./principal-pool.ts";

export type ConsentOutcome =
  | { kind: "redirect"; url: string }
  | { kind: "done"; message: string }
  | { kind: "refused"; status: 400 | 401 | 404 | 502; message: string };

interface Flow {
  upstream: string;
  principal: string;
  provider: UpstreamOAuth;
  base: AuthorizationBase;
}

/** A consent not finished within this time must start again. */
const FLOW_TTL_MS = 10 * 60_000;

export class UpstreamConsent {
  readonly #pool: PrincipalPool;
  readonly #upstream: (name: string) => UpstreamHandle | undefined;
  readonly #flows = new LRUCache<string, Flow>({ max: 10_000, ttl: FLOW_TTL_MS });

  constructor(pool: PrincipalPool, upstream: (name: string) => UpstreamHandle | undefined) {
    this.#pool = pool;
    this.#upstream = upstream;
  }

  /** Start consent at `name` for the principal a ticket names, or the authenticated `principal`. */
  async start(name: string, who: { ticket: string } | { principal: PoolPrincipal }): Promise<ConsentOutcome> {
    const handle = this.#upstream(name);
    if (!handle || !isPerPrincipal(handle.config)) {
      return {
        kind: "refused",
        status: 404,
        message: `no upstream "${name}" with per-principal credentials (auth.oauth.perPrincipal)`,
      };
    }
    const principal =
      "ticket" in who ? this.#pool.verifyTicket(name, who.ticket) : principalKey(who.principal);
    if (!principal) {
      return {
        kind: "refused",
        status: 401,
        message: "this link expired or is not valid; call the tool again for a new one",
      };
    }
    const provider = this.#pool.provider(handle.config, principal);
    try {
      const started = await beginAuthorization(provider);
      if (!started.url) {
        await this.#pool.authorized(handle, principal);
        return { kind: "done", message: `your account at upstream "${name}" is already connected` };
      }
      const state = provider.expectedState;
      if (!state) throw new Error("the authorization request carries no state");
      this.#flows.set(state, { upstream: name, principal, provider, base: started.base });
      return { kind: "redirect", url: started.url.href };
    } catch (err) {
      return {
        kind: "refused",
        status: 502,
        message: `cannot start authorization at upstream "${name}": ${(err as Error).message}`,
      };
    }
  }

  /** The authorization server's redirect back: store the tokens under the flow's principal. */
  async finish(params: URLSearchParams): Promise<ConsentOutcome> {
    const state = params.get("state") ?? "";
    const flow = this.#flows.get(state);
    if (!flow) {
      return {
        kind: "refused",
        status: 400,
        message: "unknown or expired authorization; start again from the link a call gave you",
      };
    }
    this.#flows.delete(state);
    const handle = this.#upstream(flow.upstream);
    if (!handle)
      return {
        kind: "refused",
        status: 404,
        message: `upstream "${flow.upstream}" is not configured any more`,
      };
    try {
      await finishAuthorization(flow.provider, flow.base, params);
      await this.#pool.authorized(handle, flow.principal);
    } catch (err) {
      return {
        kind: "refused",
        status: 400,
        message: `authorization at upstream "${flow.upstream}" failed: ${(err as Error).message}`,
      };
    }
    return {
      kind: "done",
      message: `your account at upstream "${flow.upstream}" is connected; you can close this tab`,
    };
  }
}
