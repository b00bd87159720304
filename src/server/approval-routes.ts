/**
 * Operators decide calls held by the `approval` policy (when the calling client cannot ask a person),
 * behind the same guard as `/mcp` (plus HTTP Basic, as the status page's buttons send what the browser
 * sent for the page); only principals in `approvals.operators` may list or decide:
 *   GET  /approvals                 the held calls
 *   POST /approvals/:id/approve     lets one run
 *   POST /approvals/:id/deny        fails it (the upstream never sees it)
 */
import { Hono } from "hono";
import { toGatewayError, toWire } from "../errors.ts";
import type { ApprovalQueue } from "../router/approval.ts";
import type { Guard } from "./guard.ts";
import { type GuardedEnv, guarded } from "./guarded.ts";
import { acceptingBasic } from "./operator-gate.ts";

export function approvalRoutes(options: {
  approvals: ApprovalQueue;
  guard: Guard;
  isLoopback(address: string | undefined): boolean;
}): Hono<GuardedEnv> {
  const { approvals } = options;
  const app = new Hono<GuardedEnv>();
  const guard = guarded(acceptingBasic(options.guard), options.isLoopback);
  app.use("/approvals", guard);
  app.use("/approvals/*", guard);
  const refused = {
    error: { code: "Forbidden", message: "only approvals.operators may see or decide held calls" },
  };

  app.get("/approvals", (c) => {
    if (!approvals.isOperator(c.get("principal"))) return c.json(refused, 403);
    return c.json({ pending: approvals.list() });
  });
  for (const decision of ["approve", "deny"] as const) {
    app.post(`/approvals/:id/${decision}`, (c) => {
      try {
        const found = approvals.decide(c.req.param("id"), decision === "approve", c.get("principal"));
        if (!found) {
          return c.json(
            {
              error: {
                code: "NotFound",
                message: "no call is held under this id (decided, timed out or cancelled)",
              },
            },
            404,
          );
        }
        return c.json({ id: c.req.param("id"), decision });
      } catch (err) {
        const e = toGatewayError(err);
        return c.json({ error: { code: e.code, message: toWire(e).message } }, 403);
      }
    });
  }
  return app;
}
