import { ErrorCode, GatewayError } from "../errors.ts";
import type { CallContext } from "./types.ts";

/**
 * The error a policy rejects with when `ctx.signal` aborts: the abort reason when it is a GatewayError
 * (the deadline policy aborts with its UpstreamTimeout), otherwise Cancelled: the client went away.
 */
export function abortError(ctx: CallContext, policy: string, during: string): GatewayError {
  const reason: unknown = ctx.signal.reason;
  if (reason instanceof GatewayError) return reason;
  return new GatewayError(ErrorCode.Cancelled, `the call was cancelled ${during}`, {
    upstream: ctx.upstream,
    tool: ctx.tool,
    policy,
    cause: reason,
  });
}
