/** `GET /metrics`: the Prometheus text exposition of the gateway's meters. */
import { Hono, type MiddlewareHandler } from "hono";
import type { Telemetry } from "../../telemetry/telemetry.ts";

/** Content type of the Prometheus text format 0.0.4. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export function metricsRoutes(telemetry: Pick<Telemetry, "scrape">, gate?: MiddlewareHandler): Hono {
  const app = new Hono();
  if (gate) app.use("/metrics", gate);
  app.get("/metrics", async (c) => {
    const text = await telemetry.scrape();
    if (text === undefined) {
      return c.text(
        "Prometheus metrics are off: set telemetry.metrics.prometheus to true (and unset OTEL_SDK_DISABLED) to serve them\n",
        404,
      );
    }
    return c.body(text, 200, { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" });
  });
  return app;
}
