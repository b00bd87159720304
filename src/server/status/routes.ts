/**
 * The status routes: `GET /status` (JSON, see StatusReport) and the status page at `GET /` and `GET /ui`.
 * Mount at the root of the gateway's hono app (the page fetches `./status`).
 */
import { Hono, type MiddlewareHandler } from "hono";
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from "./page.ts";
import { type StatusSource, statusReport } from "./source.ts";

/** `gate` guards the routes (the operator gate: src/server/operator-gate.ts); `page` guards the HTML. */
export interface StatusGates {
  status: MiddlewareHandler;
  page: MiddlewareHandler;
}

export function statusRoutes(source: StatusSource, gates?: StatusGates): Hono {
  const app = new Hono();
  if (gates) {
    app.use("/status", gates.status);
    app.use("/status/*", gates.status);
    for (const path of ["/", "/ui"]) app.use(path, gates.page);
  }
  app.get("/status", (c) => {
    c.header("cache-control", "no-store");
    return c.json(statusReport(source));
  });
  const page = () =>
    new Response(STATUS_PAGE_HTML, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": STATUS_PAGE_CSP,
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
        "cache-control": "no-store",
      },
    });
  app.get("/", page);
  app.get("/ui", page);
  return app;
}
