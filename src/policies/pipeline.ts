/**
 * The policy pipeline: the one place with the order. Outermost first:
 *
 *   deadline( fallback( retry( breaker( bulkhead( [sharedCaps]( lock( timeout( upstream call ))))))))
 *
 * - deadline outermost: ctx.deadline bounds everything (queue and lock waits, backoff sleeps, every
 *   attempt and every fallback route); its abort reaches every wait inside, which then fails at once.
 * - fallback outside retry: an alternate route is for a failure that retries could not fix, and each
 *   route brings its own pipeline (its own retries, breaker and limits) through `callRoute`.
 * - retry outside breaker: every attempt is seen (and counted) by the breaker, and an open breaker
 *   makes the remaining attempts fail fast instead of hammering a failing upstream.
 * - retry outside bulkhead and lock: a backoff sleep must not hold a slot or a lock others wait for.
 * - breaker outside bulkhead: an open breaker fails fast and must not queue behind live calls; queue
 *   overload (QueueFull/QueueTimeout) is not an upstream failure and the breaker ignores it.
 * - bulkhead outside lock: the slot limits work in flight; the lock only orders the calls that conflict.
 *   The reverse would let calls waiting for a lock pile up while holding nothing, unbounded.
 * - sharedCaps (only with a cluster store) right inside the local bulkheads: only calls that hold a local
 *   slot ask the store, so a busy replica never floods it; the lock's cluster lease lives in the lock.
 * - timeout innermost: it bounds the upstream call itself (an idle timeout with progress), not the
 *   waits; its abort cancels the request upstream and releases the lock and slots at once.
 *
 * Pipelines are built once per tool and cached by the router; `compose` caches the chain per terminal
 * function, so a router passing a stable function allocates no closures per call.
 */
import type { ResolvedPolicy } from "../config/policy.ts";
import type { Breaker } from "./breaker.ts";
import { type Bulkhead, bulkheadPolicy } from "./bulkhead.ts";
import type { Cluster } from "./cluster.ts";
import { type CallRoute, fallbackPolicy } from "./fallback.ts";
import { type LockManager, lockPolicy } from "./lock.ts";
import { retryPolicy } from "./retry.ts";
import { type SharedCap, sharedCapsPolicy } from "./shared-caps.ts";
import { deadlinePolicy, timeoutPolicy } from "./timeout.ts";
import type { CallContext, Policy, PolicyFn } from "./types.ts";

type AnyFn = PolicyFn<unknown>;

/** Nests policies, the first one outermost. */
export function compose(...policies: Policy[]): Policy {
  const chains = new WeakMap<AnyFn, AnyFn>();
  const build = (fn: AnyFn): AnyFn =>
    policies.reduceRight<AnyFn>((next, policy) => (ctx: CallContext) => policy.execute(next, ctx), fn);
  return {
    name: policies.map((p) => p.name).join(" > "),
    execute<T>(fn: PolicyFn<T>, ctx: CallContext): Promise<T> {
      let chain = chains.get(fn);
      if (chain === undefined) {
        chain = build(fn);
        chains.set(fn, chain);
      }
      return chain(ctx) as Promise<T>;
    },
  };
}

export interface PipelineShared {
  /** Tool, upstream and global bulkheads, taken in this order. */
  bulkheads: readonly Bulkhead[];
  locks: LockManager;
  /** From BreakerRegistry.breakerFor(); undefined when breakers are off for this tool. */
  breaker?: Breaker | undefined;
  /** Runs an alternate route; without it, fallback routes are not used. */
  callRoute?: CallRoute | undefined;
  /** Replicas sharing a store: caps count cluster-wide (`sharedCaps`, in the order of `bulkheads`), locks are leases. */
  cluster?: Cluster | undefined;
  sharedCaps?: readonly SharedCap[] | undefined;
  /** Jitter source for retry backoff (tests). */
  random?: () => number;
}

/**
 * The pipeline of one tool. The caller's ctx sets `deadline` (performance.now() + timeout.callMs, or
 * Infinity when callMs is 0), `idempotent`, `priority` and `attempt: 1`.
 */
export function buildPipeline(policy: ResolvedPolicy, shared: PipelineShared): Policy {
  const policies: Policy[] = [deadlinePolicy(policy.timeout)];
  if (shared.callRoute !== undefined && policy.fallback.routes.length > 0) {
    policies.push(fallbackPolicy(policy.fallback.routes, policy.fallback.on, shared.callRoute));
  }
  policies.push(retryPolicy(policy.retry, shared.random));
  if (shared.breaker !== undefined) policies.push(shared.breaker);
  if (shared.bulkheads.length > 0) {
    policies.push(bulkheadPolicy(shared.bulkheads, policy.concurrency.queueTimeoutMs));
  }
  if (shared.cluster !== undefined && shared.sharedCaps !== undefined && shared.sharedCaps.length > 0) {
    policies.push(sharedCapsPolicy(shared.cluster, shared.sharedCaps, policy.concurrency.queueTimeoutMs));
  }
  if (policy.lock !== null) policies.push(lockPolicy(shared.locks, policy.lock, shared.cluster));
  policies.push(timeoutPolicy(policy.timeout));
  return compose(...policies);
}
