/**
 * A principal who must connect its own upstream account (per-principal credentials) and whose client
 * supports URL-mode elicitation is asked in the client itself: `elicitation/create` with the consent URL;
 * once the person has consented in the browser the gateway sends `notifications/elicitation/complete` and
 * the call goes on. Any other client, a decline, or no consent in time: the `isError` naming the URL.
 */
import { randomUUID } from "node:crypto";
import { GatewayError } from "../errors.ts";
import type { Principal, RequestContext } from "./router.ts";

/** Resolves once `principal` has connected its account at `upstream`; rejects on `signal` or timeout. */
export type WhenAuthorized = (upstream: string, principal: Principal, signal: AbortSignal) => Promise<void>;

export async function connectOrElicit<T>(
  upstream: string,
  ctx: RequestContext,
  connect: () => Promise<T>,
  whenAuthorized: WhenAuthorized | undefined,
): Promise<T> {
  try {
    return await connect();
  } catch (err) {
    const url = err instanceof GatewayError ? err.data?.authorizeUrl : undefined;
    if (typeof url !== "string" || !whenAuthorized || ctx.caller.canElicitUrl?.() !== true) throw err;
    const elicitationId = randomUUID();
    const controller = new AbortController();
    const cancel = () => controller.abort(ctx.signal.reason);
    ctx.signal.addEventListener("abort", cancel, { once: true });
    try {
      // Listen before asking: the browser may finish before the client answers.
      const authorized = whenAuthorized(upstream, ctx.principal, controller.signal);
      authorized.catch(() => {});
      const answer = await ctx.caller.request(
        "elicitation/create",
        {
          mode: "url",
          elicitationId,
          url,
          message: `Connect your account at upstream "${upstream}" to let toolgate call it for you.`,
        },
        { relatedRequestId: ctx.requestId, signal: controller.signal },
      );
      if (answer.action !== "accept") throw err;
      await authorized;
      await ctx.caller
        .notify("notifications/elicitation/complete", { elicitationId }, ctx.requestId)
        .catch(() => {});
    } finally {
      ctx.signal.removeEventListener("abort", cancel);
      controller.abort();
    }
    return connect();
  }
}
