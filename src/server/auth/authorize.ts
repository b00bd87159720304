/**
 * What a principal may do: which tools it sees and calls (allow/deny globs, deny wins), how often
 * (token bucket per principal) and how many at once (in-flight cap per principal).
 * A principal's rules are its own entry in `security.principals`, else `security.defaultPrincipal`.
 */
import picomatch from "picomatch";
import type { PrincipalRules, SecurityOptions } from "../../config/security-schema.ts";
import { ErrorCode, GatewayError } from "../../errors.ts";
import { type RateStore, StoreUnavailable } from "../../stores/store.ts";
import type { Principal } from "./principal.ts";

export type AuthorizerOptions = Pick<SecurityOptions, "principals" | "defaultPrincipal">;

export interface Authorizer {
  canCall(principal: Principal, publicToolName: string, upstream: string): boolean;
  /** Throws GatewayError(Forbidden) naming the principal, the tool and the rule that refused it. */
  assertCanCall(principal: Principal, publicToolName: string, upstream: string): void;
  /** The tools the principal may call, for `tools/list`. */
  filterTools<T extends { name: string; upstream: string }>(principal: Principal, tools: readonly T[]): T[];
  rulesFor(principal: Principal): PrincipalRules;
}

/** A pattern over public tool names, or `upstream:<glob>` over upstream names. */
interface Pattern {
  source: string;
  matches(tool: string, upstream: string): boolean;
}

interface CompiledRules {
  allow: Pattern[];
  deny: Pattern[];
  /** Verdicts already reached, by upstream and tool (glob matching per call costs more than the lookup). */
  verdicts: Map<string, Map<string, string | null>>;
}

/** Verdicts kept per rule set: tool names come from the catalog, so a bound only guards against churn. */
const MAX_VERDICTS = 10_000;

const UPSTREAM_PREFIX = "upstream:";

function compile(source: string): Pattern {
  const onUpstream = source.startsWith(UPSTREAM_PREFIX);
  const isMatch = picomatch(onUpstream ? source.slice(UPSTREAM_PREFIX.length) : source, { dot: true });
  return { source, matches: (tool, upstream) => isMatch(onUpstream ? upstream : tool) };
}

function compileRules(rules: PrincipalRules): CompiledRules {
  return { allow: rules.allow.map(compile), deny: rules.deny.map(compile), verdicts: new Map() };
}

function judge(rules: CompiledRules, tool: string, upstream: string): string | undefined {
  const denied = rules.deny.find((p) => p.matches(tool, upstream));
  if (denied) return `it matches the deny pattern "${denied.source}"`;
  if (!rules.allow.some((p) => p.matches(tool, upstream))) return "not in its allow list";
  return undefined;
}

export function createAuthorizer(options: AuthorizerOptions): Authorizer {
  const compiled = new Map(Object.entries(options.principals).map(([id, r]) => [id, compileRules(r)]));
  const fallback = compileRules(options.defaultPrincipal);
  const compiledFor = (p: Principal) => compiled.get(p.id) ?? fallback;

  /** Undefined when allowed, else why not. */
  const refusal = (principal: Principal, tool: string, upstream: string): string | undefined => {
    const rules = compiledFor(principal);
    let byTool = rules.verdicts.get(upstream);
    const known = byTool?.get(tool);
    if (known !== undefined) return known ?? undefined;
    const why = judge(rules, tool, upstream);
    if (!byTool) {
      if (rules.verdicts.size >= MAX_VERDICTS) rules.verdicts.clear();
      byTool = new Map();
      rules.verdicts.set(upstream, byTool);
    }
    if (byTool.size >= MAX_VERDICTS) byTool.clear();
    byTool.set(tool, why ?? null);
    return why;
  };

  return {
    canCall: (principal, tool, upstream) => refusal(principal, tool, upstream) === undefined,
    assertCanCall(principal, tool, upstream) {
      const why = refusal(principal, tool, upstream);
      if (why === undefined) return;
      const source = Object.hasOwn(options.principals, principal.id)
        ? `security.principals["${principal.id}"]`
        : "security.defaultPrincipal";
      throw new GatewayError(
        ErrorCode.Forbidden,
        `principal "${principal.id}" may not call tool "${tool}": ${why} (rules: ${source})`,
        { tool, upstream, policy: "authorization" },
      );
    },
    filterTools: (principal, tools) =>
      tools.filter((t) => refusal(principal, t.name, t.upstream) === undefined),
    rulesFor: (principal) =>
      Object.hasOwn(options.principals, principal.id)
        ? (options.principals[principal.id] as PrincipalRules)
        : options.defaultPrincipal,
  };
}

export interface RateLimiterOptions {
  /** Milliseconds clock (default `Date.now`); tests inject their own. */
  now?: () => number;
  /** Principals whose buckets are remembered; the least recently seen is forgotten (a full bucket again). */
  maxTracked?: number;
  /**
   * Replicas sharing a store: `rateLimit.perMinute` is counted cluster-wide (a fixed one-minute window)
   * instead of by this process' token bucket. `replicas` divides the local fallback used if the store fails.
   */
  shared?: { rates: RateStore; replicas: number };
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/**
 * Per-principal limits: a token bucket of `rateLimit.perMinute` calls (bursts up to a minute's worth,
 * refilled continuously) and a cap of `maxInFlight` concurrent calls. With a shared store the rate is
 * counted across the cluster; `maxInFlight` stays per replica (the load balancer spreads a principal's calls).
 */
export class RateLimiter {
  readonly #rulesFor: (principal: Principal) => PrincipalRules;
  readonly #now: () => number;
  readonly #maxTracked: number;
  readonly #buckets = new Map<string, Bucket>();
  readonly #inFlight = new Map<string, number>();
  readonly #shared: RateLimiterOptions["shared"];

  constructor(rulesFor: (principal: Principal) => PrincipalRules, options: RateLimiterOptions = {}) {
    this.#rulesFor = rulesFor;
    this.#shared = options.shared;
    this.#now = options.now ?? Date.now;
    this.#maxTracked = options.maxTracked ?? 10_000;
  }

  /**
   * Admit one call: returns its release function (call it exactly when the call ends; extra calls are
   * ignored). Throws GatewayError(RateLimited) when a limit is hit; a refused call costs nothing.
   */
  acquire(principal: Principal, tool?: string): () => void {
    return this.#acquire(principal, tool, false) as () => void;
  }

  /** `acquire`, with the rate counted in the shared store when there is one (then asynchronous). */
  admit(principal: Principal, tool?: string): (() => void) | Promise<() => void> {
    return this.#acquire(principal, tool, this.#shared !== undefined);
  }

  #acquire(
    principal: Principal,
    tool: string | undefined,
    shared: boolean,
  ): (() => void) | Promise<() => void> {
    const rules = this.#rulesFor(principal);
    const running = this.#inFlight.get(principal.id) ?? 0;
    if (rules.maxInFlight !== undefined && running >= rules.maxInFlight) {
      throw new GatewayError(
        ErrorCode.RateLimited,
        `principal "${principal.id}" already has ${running} calls in flight (its maxInFlight); wait for one to finish`,
        { tool, policy: "rateLimit" },
      );
    }
    if (rules.rateLimit && shared) return this.#acquireShared(principal.id, rules.rateLimit.perMinute, tool);
    if (rules.rateLimit) this.#take(principal.id, rules.rateLimit.perMinute, tool);
    return this.#admit(principal.id);
  }

  #admit(id: string): () => void {
    this.#inFlight.set(id, (this.#inFlight.get(id) ?? 0) + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.#inFlight.get(id) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(id, left);
      else this.#inFlight.delete(id);
    };
  }

  async #acquireShared(id: string, perMinute: number, tool: string | undefined): Promise<() => void> {
    // Counted in flight while the store answers, so concurrent calls cannot overshoot maxInFlight.
    const release = this.#admit(id);
    const shared = this.#shared as NonNullable<RateLimiterOptions["shared"]>;
    try {
      const decision = await shared.rates.consume(id, perMinute);
      if (!decision.allowed) {
        throw new GatewayError(
          ErrorCode.RateLimited,
          `principal "${id}" exceeded its rate limit of ${perMinute} calls per minute across the cluster; retry in ${Math.ceil(decision.retryAfterMs / 1000)} s`,
          { tool, policy: "rateLimit", data: { retryAfterMs: decision.retryAfterMs } },
        );
      }
    } catch (err) {
      if (!(err instanceof StoreUnavailable)) {
        release();
        throw err;
      }
      try {
        this.#take(id, Math.max(1, Math.floor(perMinute / shared.replicas)), tool);
      } catch (limited) {
        release();
        throw limited;
      }
    }
    return release;
  }

  /** Calls in flight for a principal (for /status). */
  inFlight(principalId: string): number {
    return this.#inFlight.get(principalId) ?? 0;
  }

  #take(id: string, perMinute: number, tool: string | undefined): void {
    const now = this.#now();
    const perMs = perMinute / 60_000;
    const bucket = this.#buckets.get(id) ?? { tokens: perMinute, updatedAt: now };
    bucket.tokens = Math.min(perMinute, bucket.tokens + Math.max(0, now - bucket.updatedAt) * perMs);
    bucket.updatedAt = now;
    // Re-insert so the map's order is least recently used first.
    this.#buckets.delete(id);
    this.#buckets.set(id, bucket);
    if (this.#buckets.size > this.#maxTracked) {
      const oldest = this.#buckets.keys().next().value;
      if (oldest !== undefined) this.#buckets.delete(oldest);
    }
    if (bucket.tokens < 1) {
      const retryAfterMs = Math.ceil((1 - bucket.tokens) / perMs);
      throw new GatewayError(
        ErrorCode.RateLimited,
        `principal "${id}" exceeded its rate limit of ${perMinute} calls per minute; retry in ${Math.ceil(retryAfterMs / 1000)} s`,
        { tool, policy: "rateLimit", data: { retryAfterMs } },
      );
    }
    bucket.tokens -= 1;
  }
}
