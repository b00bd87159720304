/**
 * The policy pipeline of each tool, built once and cached by route, with the state the pipelines share:
 * a bulkhead per tool, per upstream and one global; one lock manager; the breakers.
 * A catalog rebuild makes new routes and so new pipelines; bulkheads and breakers are kept by name and
 * settings, so calls in flight keep their slots.
 */
import type { ToolRoute } from "../catalog/catalog.ts";
import type { ResolvedConfig } from "../config/load.ts";
import type { ResolvedPolicy } from "../config/policy.ts";
import { BreakerRegistry } from "../policies/breaker.ts";
import { Bulkhead } from "../policies/bulkhead.ts";
import type { Cluster } from "../policies/cluster.ts";
import type { PolicyEvents } from "../policies/events.ts";
import type { CallRoute } from "../policies/fallback.ts";
import { LockManager } from "../policies/lock.ts";
import { buildPipeline } from "../policies/pipeline.ts";
import type { SharedCap } from "../policies/shared-caps.ts";
import type { Policy } from "../policies/types.ts";

export interface PipelineCacheOptions {
  config: () => ResolvedConfig;
  events: PolicyEvents;
  /** Replicas sharing a store (cluster.redis): caps count cluster-wide and locks are leases. */
  cluster?: Cluster | undefined;
  /** Runs a fallback route's own pipeline (without fallback): the router's; absent, fallbacks are not built. */
  callRoute?: CallRoute | undefined;
}

export class PipelineCache {
  readonly locks = new LockManager();
  readonly breakers: BreakerRegistry;
  readonly #options: PipelineCacheOptions;
  readonly #withFallback = new WeakMap<ToolRoute, Policy>();
  readonly #withoutFallback = new WeakMap<ToolRoute, Policy>();
  readonly #bulkheads = new Map<string, Bulkhead>();

  constructor(options: PipelineCacheOptions) {
    this.#options = options;
    this.breakers = new BreakerRegistry({ events: options.events });
  }

  /** The cached pipeline of a route; `fallback: false` for a route serving as another tool's fallback. */
  pipeline(route: ToolRoute, fallback: boolean): Policy {
    const cache = fallback ? this.#withFallback : this.#withoutFallback;
    let pipeline = cache.get(route);
    if (!pipeline) {
      pipeline = this.#build(route, fallback);
      cache.set(route, pipeline);
    }
    return pipeline;
  }

  #build(route: ToolRoute, fallback: boolean): Policy {
    const { policy } = route;
    const config = this.#options.config();
    const upstream = config.upstreams.find((u) => u.name === route.upstream);
    const { maxInFlight } = config.gateway;
    const caps: Array<[string, ResolvedPolicy["concurrency"]]> = [
      [`tool "${route.name}"`, policy.concurrency],
      [`upstream "${route.upstream}"`, upstream?.concurrency ?? policy.concurrency],
      ["global", { maxInFlight, queueSize: maxInFlight * 4, queueTimeoutMs: 0, priority: 0 }],
    ];
    const { cluster } = this.#options;
    return buildPipeline(policy, {
      bulkheads: caps.map(([name, limits]) => this.#bulkhead(name, limits)),
      cluster,
      sharedCaps: cluster && caps.map(([name, limits]) => this.#sharedCap(cluster, name, limits)),
      locks: this.locks,
      breaker: this.breakers.breakerFor(breakerOptions(policy, upstream?.policy), route.upstream, route.name),
      callRoute: fallback ? this.#options.callRoute : undefined,
    });
  }

  /** One bulkhead per name and settings: a reload that changes the limits starts a fresh one. */
  #bulkhead(name: string, limits: ResolvedPolicy["concurrency"]): Bulkhead {
    const key = `${name}|${limits.maxInFlight}|${limits.queueSize}|${limits.queueTimeoutMs}`;
    let bulkhead = this.#bulkheads.get(key);
    if (!bulkhead) {
      bulkhead = new Bulkhead({ name, ...limits });
      this.#bulkheads.set(key, bulkhead);
    }
    return bulkhead;
  }

  /** A cluster-wide cap, with its local fallback bulkhead of limit / replicas (at least 1). */
  #sharedCap(cluster: Cluster, name: string, limits: ResolvedPolicy["concurrency"]): SharedCap {
    const local = Math.max(1, Math.floor(limits.maxInFlight / cluster.options.replicas));
    return {
      name,
      limit: limits.maxInFlight,
      fallback: this.#bulkhead(`${name} (fallback)`, { ...limits, maxInFlight: local }),
    };
  }

  /** In-flight and queued per bulkhead, for metrics and the status page. */
  bulkheadStates(): Array<{
    name: string;
    inFlight: number;
    queued: number;
    maxInFlight: number;
    queueSize: number;
  }> {
    return [...this.#bulkheads.values()].map((b) => ({
      name: b.name,
      inFlight: b.inFlight,
      queued: b.queued,
      maxInFlight: b.maxInFlight,
      queueSize: b.queueSize,
    }));
  }

  shutdown(): void {
    this.breakers.shutdown();
  }
}

/**
 * An upstream-scoped breaker is shared by all the upstream's tools, so it takes the upstream-level settings.
 * A tool whose breaker settings differ from its upstream's (set at tool level) gets a breaker of its own:
 * settings written for one tool never silently apply to, or vanish into, a shared breaker.
 */
function breakerOptions(
  policy: ResolvedPolicy,
  upstreamPolicy: ResolvedPolicy | undefined,
): ResolvedPolicy["breaker"] {
  if (policy.breaker.scope !== "upstream" || !upstreamPolicy) return policy.breaker;
  const { enabled: _, ...own } = policy.breaker;
  const { enabled: __, ...shared } = upstreamPolicy.breaker;
  if (JSON.stringify(own) !== JSON.stringify(shared)) return { ...policy.breaker, scope: "tool" };
  return { ...upstreamPolicy.breaker, enabled: policy.breaker.enabled };
}
