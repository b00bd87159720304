/**
 * Human approval before a call runs (tool policy `approval: "always"`). The calling client is asked through
 * elicitation, with the tool, its upstream and the arguments; a client that cannot ask leaves the call held
 * for an operator (`approvals.operators`, over HTTP `/approvals` or `toolgate approvals`), or refused when
 * there is none. Only an explicit approval lets the call go on; anything else fails it before the upstream
 * is reached. Each decision is logged with the principal that made it.
 */
import { randomUUID } from "node:crypto";
import type { ToolRoute } from "../catalog/catalog.ts";
import { ErrorCode, GatewayError } from "../errors.ts";
import type { Logger } from "../telemetry/log.ts";
import type { Principal, RequestContext } from "./router.ts";

const MAX_SHOWN_ARGUMENTS = 2_000;

/** A call held for an operator's decision. */
export interface PendingApproval {
  id: string;
  tool: string;
  upstream: string;
  /** Who made the call. */
  principal: string;
  /** The arguments as JSON (cut at 2,000 characters). */
  arguments: string;
  /** Policy `onFailure`: how the call failed (approving runs it again). */
  failure?: string;
  createdAt: string;
}

export interface ApprovalQueueOptions {
  operators: () => readonly string[];
  timeoutMs: () => number;
  log: Logger;
}

/** Calls held for operators, in memory (they live as long as the call waits). */
export class ApprovalQueue {
  readonly #options: ApprovalQueueOptions;
  readonly #pending = new Map<string, { info: PendingApproval; decide: (approved: boolean) => void }>();

  constructor(options: ApprovalQueueOptions) {
    this.#options = options;
  }

  get enabled(): boolean {
    return this.#options.operators().length > 0;
  }

  isOperator(principal: Principal): boolean {
    return this.#options.operators().includes(principal.id);
  }

  list(): PendingApproval[] {
    return [...this.#pending.values()].map((p) => p.info);
  }

  /** An operator's decision; false when no call waits under `id` (decided, timed out, cancelled). */
  decide(id: string, approved: boolean, by: Principal): boolean {
    if (!this.isOperator(by)) {
      throw new GatewayError(ErrorCode.Forbidden, "only approvals.operators may decide held calls", {
        policy: "approval",
      });
    }
    const pending = this.#pending.get(id);
    if (!pending) return false;
    this.#options.log.info("approval decision", {
      tool: pending.info.tool,
      upstream: pending.info.upstream,
      principal: pending.info.principal,
      decidedBy: by.id,
      decision: approved ? "approved" : "denied",
    });
    pending.decide(approved);
    return true;
  }

  /** Holds a call until an operator decides, it times out, or its caller gives up. */
  wait(info: Omit<PendingApproval, "id" | "createdAt">, signal: AbortSignal, onHeld: (id: string) => void) {
    const id = randomUUID();
    return new Promise<boolean>((resolve, reject) => {
      const timeoutMs = this.#options.timeoutMs();
      const finish = () => {
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        this.#pending.delete(id);
      };
      const onAbort = () => {
        finish();
        reject(signal.reason ?? new GatewayError(ErrorCode.Cancelled, "the call was cancelled"));
      };
      const timer = setTimeout(() => {
        finish();
        reject(
          new GatewayError(
            ErrorCode.Forbidden,
            `no operator decided within ${timeoutMs} ms (approvals.timeoutMs); the call was not run`,
            { tool: info.tool, upstream: info.upstream, policy: "approval" },
          ),
        );
      }, timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });
      this.#pending.set(id, {
        info: { ...info, id, createdAt: new Date().toISOString() },
        decide: (approved) => {
          finish();
          resolve(approved);
        },
      });
      onHeld(id);
    });
  }
}

/**
 * Waits for a person's approval of a call; throws Forbidden unless approved. `failure`: the call already
 * failed (policy `onFailure`) and the question is whether to run it again.
 */
export async function requireApproval(
  route: ToolRoute,
  args: Record<string, unknown>,
  ctx: RequestContext,
  log: Logger,
  queue: ApprovalQueue | undefined,
  failure?: string,
): Promise<void> {
  const where = { upstream: route.upstream, tool: route.name, policy: "approval" };
  let shown = JSON.stringify(args);
  if (shown.length > MAX_SHOWN_ARGUMENTS) shown = `${shown.slice(0, MAX_SHOWN_ARGUMENTS)}…`;
  if (ctx.caller.canElicit?.() !== true) {
    if (!queue?.enabled) {
      log.info("approval refused: the client cannot ask a person", { ...where, principal: ctx.principal.id });
      throw new GatewayError(
        ErrorCode.Forbidden,
        "this tool runs only after a person approves each call, and this client cannot ask (it has no elicitation capability) and no operator is configured (approvals.operators)",
        where,
      );
    }
    const approved = await queue.wait(
      {
        tool: route.name,
        upstream: route.upstream,
        principal: ctx.principal.id,
        arguments: shown,
        ...(failure && { failure }),
      },
      ctx.signal,
      (id) => {
        log.info("call held for an operator's approval", { ...where, principal: ctx.principal.id, id });
        ctx.caller.held?.(`waiting for an operator's approval (toolgate approvals approve ${id})`);
      },
    );
    if (!approved) {
      throw new GatewayError(ErrorCode.Forbidden, "an operator denied this call; it was not run", where);
    }
    return;
  }
  const answer = await ctx.caller.request(
    "elicitation/create",
    {
      message: failure
        ? `A call to tool "${route.name}" (upstream "${route.upstream}") with arguments ${shown} failed: ${failure}. Run it again?`
        : `Approve a call to tool "${route.name}" (upstream "${route.upstream}") with arguments ${shown}?`,
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
