/**
 * Human approval before a call runs (tool policy `approval: "always"`): the calling client is asked through
 * elicitation, with the tool, its upstream and the arguments. Only an explicit approval lets the call go on;
 * a decline, a cancel, or a client that cannot ask fails it before the upstream is reached. Each decision is
 * logged with the principal that made it.
 */
import type { ToolRoute } from "../catalog/catalog.ts";
import { ErrorCode, GatewayError } from "../errors.ts";
import type { Logger } from "../telemetry/log.ts";
import type { RequestContext } from "./router.ts";

const MAX_SHOWN_ARGUMENTS = 2_000;

export async function requireApproval(
  route: ToolRoute,
  args: Record<string, unknown>,
  ctx: RequestContext,
  log: Logger,
): Promise<void> {
  const where = { upstream: route.upstream, tool: route.name, policy: "approval" };
  if (ctx.caller.canElicit?.() !== true) {
    log.info("approval refused: the client cannot ask a person", { ...where, principal: ctx.principal.id });
    throw new GatewayError(
      ErrorCode.Forbidden,
      "this tool runs only after a person approves each call, and this client cannot ask (it has no elicitation capability); use a client that supports elicitation",
      where,
    );
  }
  let shown = JSON.stringify(args);
  if (shown.length > MAX_SHOWN_ARGUMENTS) shown = `${shown.slice(0, MAX_SHOWN_ARGUMENTS)}…`;
  const answer = await ctx.caller.request(
    "elicitation/create",
    {
      message: `Approve a call to tool "${route.name}" (upstream "${route.upstream}") with arguments ${shown}?`,
      requestedSchema: {
        type: "object",
        properties: { approve: { type: "boolean", title: "Approve this call", default: false } },
        required: ["approve"],
      },
    },
    { relatedRequestId: ctx.requestId, signal: ctx.signal },
  );
  const content = answer.content as { approve?: unknown } | undefined;
  const approved = answer.action === "accept" && content?.approve === true;
  log.info("approval decision", {
    ...where,
    principal: ctx.principal.id,
    decision: approved ? "approved" : String(answer.action ?? "none"),
  });
  if (!approved) {
    throw new GatewayError(ErrorCode.Forbidden, "a person did not approve this call; it was not run", where);
  }
}
