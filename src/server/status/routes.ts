/**
 * The status routes: `GET /status` (JSON, see StatusReport; `?history=1` adds the last hour), the live stream
 * `GET /status/stream` (Server-Sent Events: a `status` event every `?interval=` ms, default 2 s, with the last
 * hour whenever a new point has closed) and the status page at `GET /` and `GET /ui`. Mount at the root of
 * the gateway's hono app (the page opens `./status/stream`).
 */
import { Hono, type MiddlewareHandler } from "hono";
import { streamSSE } from "hono/streaming";
import { STATUS_PAGE_CSP, STATUS_PAGE_HTML } from "./page.ts";
import { type StatusSource, statusReport } from "./source.ts";

/** `status` guards the JSON and the stream, `page` the HTML (the operator gate: src/server/operator-gate.ts). */
export interface StatusGates {
  status: MiddlewareHandler;
  page: MiddlewareHandler;
}

const MIN_INTERVAL_MS = 250;
const DEFAULT_INTERVAL_MS = 2_000;

export function statusRoutes(source: StatusSource, gates?: StatusGates): Hono {
  const app = new Hono();
  if (gates) {
    app.use("/status", gates.status);
    app.use("/status/*", gates.status);
    for (const path of ["/", "/ui"]) app.use(path, gates.page);
  }
  app.get("/status", async (c) => {
    c.header("cache-control", "no-store");
    return c.json(await statusReport(source, new Date(), { history: c.req.query("history") === "1" }));
  });
  app.get("/status/stream", (c) => {
    const interval = Math.max(MIN_INTERVAL_MS, Number(c.req.query("interval")) || DEFAULT_INTERVAL_MS);
    c.header("cache-control", "no-store");
    c.header("x-accel-buffering", "no"); // nginx: pass events on at once
    return streamSSE(c, async (stream) => {
      let sentHistory: number | undefined;
      let id = 0;
      while (!stream.aborted && !stream.closed) {
        const end = source.history?.end;
        const report = await statusReport(source, new Date(), { history: end !== sentHistory });
        sentHistory = end;
        await stream.writeSSE({ event: "status", id: String(++id), data: JSON.stringify(report) });
        await stream.sleep(interval);
      }
    });
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
