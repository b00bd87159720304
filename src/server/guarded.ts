/** The guard of `/mcp` (Origin/Host, authentication) as hono middleware, for the gateway's plain HTTP APIs. */
import { createMiddleware } from "hono/factory";
import type { Principal } from "./auth/principal.ts";
import type { Guard } from "./guard.ts";

export type GuardedEnv = {
  Bindings: { incoming?: { socket?: { remoteAddress?: string } } };
  Variables: { principal: Principal };
};

export function guarded(guard: Guard, isLoopback: (address: string | undefined) => boolean) {
  return createMiddleware<GuardedEnv>(async (c, next) => {
    const verdict = await guard(c.req.raw.headers, {
      loopback: isLoopback(c.env?.incoming?.socket?.remoteAddress),
    });
    if (!verdict.ok) {
      return c.json(
        { error: { code: "Unauthorized", message: verdict.message } },
        verdict.status,
        verdict.headers,
      );
    }
    c.set("principal", verdict.principal);
    await next();
  });
}
