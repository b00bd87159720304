/**
 * Policy defaults and the one precedence rule: defaults → upstream → tool, field by field, the most
 * specific level winning. The result has every field filled, so policies never guess.
 */
import type { FallbackRoute, PolicyOptions } from "./schema.ts";

export type FallbackTrigger =
  | "unavailable"
  | "circuitOpen"
  | "timeout"
  | "retriesExhausted"
  | "overload"
  | "upstreamError";

export interface ResolvedPolicy {
  timeout: { attemptMs: number; callMs: number; resetOnProgress: boolean };
  retry: { maxAttempts: number; baseDelayMs: number; maxDelayMs: number; retryToolErrors: boolean };
  breaker: {
    enabled: boolean;
    scope: "upstream" | "tool";
    failureRatePercent: number;
    volumeThreshold: number;
    windowMs: number;
    resetTimeoutMs: number;
  };
  concurrency: { maxInFlight: number; queueSize: number; queueTimeoutMs: number; priority: number };
  /** `null`: no lock. `key` undefined: one call at a time for the tool (or group). */
  lock: { key: string | undefined; group: string | undefined; timeoutMs: number } | null;
  fallback: { routes: FallbackRoute[]; on: FallbackTrigger[] };
  /** `undefined`: decide from the tool's annotations. */
  idempotent: boolean | undefined;
  /** Tasks the gateway runs itself (for tools without upstream task support). */
  task: { mode: "off" | "auto" | "always"; thresholdMs: number; webhook: string | undefined };
  /** A person approves each call first (asked through the client). */
  approval: "off" | "always" | "onFailure";
}

export const POLICY_DEFAULTS: ResolvedPolicy = {
  timeout: { attemptMs: 30_000, callMs: 120_000, resetOnProgress: true },
  retry: { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 2_000, retryToolErrors: false },
  breaker: {
    enabled: true,
    scope: "upstream",
    failureRatePercent: 50,
    volumeThreshold: 10,
    windowMs: 30_000,
    resetTimeoutMs: 15_000,
  },
  concurrency: { maxInFlight: 1024, queueSize: 1024, queueTimeoutMs: 30_000, priority: 0 },
  lock: null,
  fallback: { routes: [], on: ["unavailable", "circuitOpen", "timeout", "retriesExhausted"] },
  idempotent: undefined,
  task: { mode: "off", thresholdMs: 1_000, webhook: undefined },
  approval: "off",
};

/** Upstream-wide concurrency when `upstreams.<name>.concurrency` is not set. */
export const UPSTREAM_CONCURRENCY_DEFAULTS: ResolvedPolicy["concurrency"] = {
  maxInFlight: 1024,
  queueSize: 4096,
  queueTimeoutMs: 30_000,
  priority: 0,
};

const LOCK_TIMEOUT_DEFAULT_MS = 30_000;

/** Merge policy levels, least specific first. */
export function resolvePolicy(...levels: Array<PolicyOptions | undefined>): ResolvedPolicy {
  return levels.reduce<ResolvedPolicy>(extendPolicy, POLICY_DEFAULTS);
}

/** One more specific level over a resolved policy; fields the level leaves out keep the base's value. */
export function extendPolicy(base: ResolvedPolicy, level: PolicyOptions | undefined): ResolvedPolicy {
  if (!level) return base;
  return {
    timeout: { ...base.timeout, ...defined(level.timeout) },
    retry: { ...base.retry, ...defined(level.retry) },
    breaker: { ...base.breaker, ...defined(level.breaker) },
    concurrency: { ...base.concurrency, ...defined(level.concurrency) },
    lock: level.lock === undefined ? base.lock : resolveLock(level.lock, base.lock),
    fallback: level.fallback
      ? { routes: level.fallback.routes, on: level.fallback.on ?? base.fallback.on }
      : base.fallback,
    idempotent: level.idempotent ?? base.idempotent,
    task:
      level.task === undefined
        ? base.task
        : typeof level.task === "string"
          ? { ...base.task, mode: level.task }
          : {
              mode: level.task.mode ?? base.task.mode,
              thresholdMs: level.task.thresholdMs ?? base.task.thresholdMs,
              webhook: level.task.webhook ?? base.task.webhook,
            },
    approval: level.approval ?? base.approval,
  };
}

function resolveLock(
  lock: NonNullable<PolicyOptions["lock"]>,
  previous: ResolvedPolicy["lock"],
): ResolvedPolicy["lock"] {
  if (lock === false) return null;
  if (lock === true)
    return { key: undefined, group: undefined, timeoutMs: previous?.timeoutMs ?? LOCK_TIMEOUT_DEFAULT_MS };
  return {
    key: lock.key,
    group: lock.group,
    timeoutMs: lock.timeoutMs ?? previous?.timeoutMs ?? LOCK_TIMEOUT_DEFAULT_MS,
  };
}

function defined<T extends object>(o: T | undefined): Partial<T> {
  if (!o) return {};
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
