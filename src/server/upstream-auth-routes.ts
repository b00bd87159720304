/**
 * Consent for per-principal upstreams (`auth.oauth.perPrincipal`), in the person's browser:
 *   GET /oauth/upstreams/:name/authorize   starts it for the caller (the signed `ticket` of the URL a call
 *                                          returned, or the same credentials as /mcp, HTTP Basic included
 *                                          for the status page's link), redirects to the
 *                                          authorization server
 *   GET /oauth/callback                    the authorization server's redirect: tokens stored for that principal
 * The flows themselves live in upstreams/consent.ts; this is the HTTP side.
 */
import { Hono } from "hono";
import type { Principal } from "./auth/principal.ts";
import type { Guard } from "./guard.ts";
import type { GuardedEnv } from "./guarded.ts";
import { acceptingBasic } from "./operator-gate.ts";

type Outcome =
  | { kind: "redirect"; url: string }
  | { kind: "done"; message: string }
  | { kind: "refused"; status: 400 | 401 | 404 | 502; message: string };

/** What the routes need of upstreams/consent.ts's UpstreamConsent. */
export interface ConsentFlows {
  start(name: string, who: { ticket: string } | { principal: Principal }): Promise<Outcome>;
  finish(params: URLSearchParams): Promise<Outcome>;
}

export function upstreamAuthRoutes(options: {
  consent: ConsentFlows;
  guard: Guard;
  isLoopback(address: string | undefined): boolean;
  log: { warn(message: string, fields?: Record<string, unknown>): void };
}): Hono<GuardedEnv> {
  const app = new Hono<GuardedEnv>();
  const answer = (outcome: Outcome, route: string): Response => {
    if (outcome.kind === "redirect") return Response.redirect(outcome.url, 302);
    if (outcome.kind === "refused")
      options.log.warn("upstream consent refused", { route, reason: outcome.message });
    return new Response(`toolgate: ${outcome.message}\n`, {
      status: outcome.kind === "done" ? 200 : outcome.status,
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  };

  app.get("/oauth/upstreams/:name/authorize", async (c) => {
    const name = c.req.param("name");
    const ticket = c.req.query("ticket");
    if (ticket !== undefined) return answer(await options.consent.start(name, { ticket }), "authorize");
    const verdict = await acceptingBasic(options.guard)(c.req.raw.headers, {
      loopback: options.isLoopback(c.env?.incoming?.socket?.remoteAddress),
    });
    if (!verdict.ok) {
      return c.json(
        { error: { code: "Unauthorized", message: verdict.message } },
        verdict.status,
        verdict.headers,
      );
    }
    return answer(await options.consent.start(name, { principal: verdict.principal }), "authorize");
  });

  app.get("/oauth/callback", async (c) =>
    answer(await options.consent.finish(new URL(c.req.url).searchParams), "callback"),
  );
  return app;
}
