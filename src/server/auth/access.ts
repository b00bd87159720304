/**
 * The router's access control over the security config: who may see and call which tool (authorizer) and
 * how often (rate limiter, shared across replicas in a cluster). Rebuilt on reload; the adapter reads the
 * current rules on every check.
 */
import type { ResolvedConfig } from "../../config/load.ts";
import type { Cluster } from "../../policies/cluster.ts";
import type { AccessControl } from "../../router/router.ts";
import { type Authorizer, createAuthorizer, RateLimiter } from "./authorize.ts";

export interface AccessRules {
  authorizer: Authorizer;
  limiter: RateLimiter;
}

/** The authorizer and rate limiter of a config. */
export function accessFor(config: ResolvedConfig, cluster: Cluster | undefined): AccessRules {
  const authorizer = createAuthorizer(config.security);
  const shared = cluster && { rates: cluster.options.stores.rates, replicas: cluster.options.replicas };
  return { authorizer, limiter: new RateLimiter((p) => authorizer.rulesFor(p), shared ? { shared } : {}) };
}

/** The router's AccessControl over whatever rules `current` returns (the config's, after each reload). */
export function accessControl(current: () => AccessRules): AccessControl {
  return {
    canSee: (principal, route) => current().authorizer.canCall(principal, route.name, route.upstream),
    admit: (principal, route) => {
      const { authorizer, limiter } = current();
      authorizer.assertCanCall(principal, route.name, route.upstream);
      return limiter.admit(principal, route.name);
    },
  };
}
