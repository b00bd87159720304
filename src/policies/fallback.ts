/**
 * On an eligible final failure, the next route of an ordered chain (another upstream's tool), with its
 * arguments mapped. Eligibility comes from the `on` triggers and classify(): a client error (bad
 * arguments, cancellation) never falls back. The result says which route served it and what failed
 * before, in `_meta`; when every route fails, FallbackExhausted lists each route's error.
 */

import type { FallbackTrigger } from "../config/policy.ts";
import type { FallbackRoute } from "../config/schema.ts";
import { classify, describe, ErrorCode, GatewayError, toGatewayError } from "../errors.ts";
import { type ArgReader, compileArgPath } from "./arg-path.ts";
import type { CallContext, Policy, PolicyFn } from "./types.ts";

/** Runs one alternate route (its own pipeline, without fallback) with mapped arguments. */
export type CallRoute = (
  route: FallbackRoute,
  args: Record<string, unknown>,
  ctx: CallContext,
) => Promise<unknown>;

interface RouteAttempt {
  /** Public tool name of the route. */
  tool: string;
  /** Set when the route failed. */
  code?: ErrorCode;
  message?: string;
}

const ROUTE_META_KEY = "toolgate/route";
const ATTEMPTS_META_KEY = "toolgate/attempts";

const TRIGGER_CODES: Record<FallbackTrigger, readonly ErrorCode[]> = {
  unavailable: [ErrorCode.UpstreamUnavailable, ErrorCode.ConnectionLost],
  circuitOpen: [ErrorCode.CircuitOpen],
  timeout: [ErrorCode.UpstreamTimeout],
  retriesExhausted: [ErrorCode.RetriesExhausted],
  overload: [ErrorCode.QueueFull, ErrorCode.QueueTimeout, ErrorCode.LockTimeout],
  upstreamError: [ErrorCode.UpstreamError],
};

/** The test for "this failure moves the call to the next route" under the `on` triggers. */
function fallbackEligibility(on: readonly FallbackTrigger[]): (error: GatewayError) => boolean {
  const codes = new Set(on.flatMap((trigger) => TRIGGER_CODES[trigger]));
  return (error) => {
    if (classify(error) === "client") return false;
    if (codes.has(error.code)) return true;
    // Retries that ran out on, say, timeouts fall back under "timeout" too.
    const cause = error.code === ErrorCode.RetriesExhausted ? error.cause : undefined;
    return cause instanceof GatewayError && codes.has(cause.code);
  };
}

interface CompiledRoute {
  route: FallbackRoute;
  mapArgs: (args: Record<string, unknown>) => Record<string, unknown>;
}

export function fallbackPolicy(
  routes: readonly FallbackRoute[],
  on: readonly FallbackTrigger[],
  callRoute: CallRoute,
): Policy {
  const compiled = routes.map(compileRoute);
  const eligible = fallbackEligibility(on);

  const run = async <T>(fn: PolicyFn<T>, ctx: CallContext): Promise<T> => {
    const attempts: RouteAttempt[] = [];
    let from = ctx.tool;
    let lastError: GatewayError;
    try {
      return tag(await fn(ctx), ctx.tool, attempts);
    } catch (err) {
      lastError = toGatewayError(err, { upstream: ctx.upstream, tool: ctx.tool });
      if (ctx.signal.aborted || !eligible(lastError)) throw lastError;
      attempts.push(failed(ctx.tool, lastError));
    }
    for (const { route, mapArgs } of compiled) {
      ctx.events.emit({
        type: "fallback",
        upstream: ctx.upstream,
        tool: ctx.tool,
        attempt: ctx.attempt,
        from,
        to: route.tool,
        reason: lastError.code,
      });
      try {
        return tag((await callRoute(route, mapArgs(ctx.args), ctx)) as T, route.tool, attempts);
      } catch (err) {
        lastError = toGatewayError(err, { tool: route.tool });
        attempts.push(failed(route.tool, lastError));
        if (ctx.signal.aborted) throw lastError;
        if (!eligible(lastError)) break;
      }
      from = route.tool;
    }
    throw exhausted(ctx, attempts, lastError);
  };

  return { name: "fallback", execute: run };
}

function compileRoute(route: FallbackRoute): CompiledRoute {
  if (route.args === undefined) return { route, mapArgs: (args) => args };
  const readers: Array<[string, ArgReader]> = Object.entries(route.args).map(([name, source]) => [
    name,
    compileArgPath(source),
  ]);
  return {
    route,
    mapArgs: (args) => {
      const mapped: Record<string, unknown> = {};
      for (const [name, read] of readers) {
        const value = read(args);
        if (value !== undefined) mapped[name] = value;
      }
      return mapped;
    },
  };
}

function failed(tool: string, error: GatewayError): RouteAttempt {
  return { tool, code: error.code, message: describe(error) };
}

/** Adds the route tag to an object result (an MCP CallToolResult), keeping its own `_meta`. */
function tag<T>(result: T, tool: string, attempts: RouteAttempt[]): T {
  if (typeof result !== "object" || result === null) return result;
  const meta = (result as { _meta?: Record<string, unknown> })._meta;
  return {
    ...result,
    _meta: { ...meta, [ROUTE_META_KEY]: tool, [ATTEMPTS_META_KEY]: [...attempts, { tool }] },
  };
}

function exhausted(ctx: CallContext, attempts: RouteAttempt[], last: GatewayError): GatewayError {
  const list = attempts.map((a) => `${a.tool}: ${a.message}`).join("; ");
  return new GatewayError(
    ErrorCode.FallbackExhausted,
    `no route could serve the call (${attempts.length} tried): ${list}`,
    {
      upstream: ctx.upstream,
      tool: ctx.tool,
      policy: "fallback",
      cause: last,
      data: { attempts },
    },
  );
}
