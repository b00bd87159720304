/** The trace and metric exporters chosen by the options: console (to the log, never stdout) and OTLP/HTTP. */
import { createServer, type IncomingMessage } from "node:http";
import { context, trace } from "@opentelemetry/api";
import { afterEach, describe, expect, it } from "vitest";
import { TelemetrySchema } from "../../../src/config/telemetry-schema.ts";
import { createLogger } from "../../../src/telemetry/log.ts";
import { telemetryOptions } from "../../../src/telemetry/options.ts";
import { createTelemetry } from "../../../src/telemetry/setup.ts";
import type { Telemetry } from "../../../src/telemetry/telemetry.ts";

let telemetry: Telemetry | undefined;
let close: (() => void) | undefined;
afterEach(async () => {
  await telemetry?.shutdown();
  close?.();
  telemetry = undefined;
  close = undefined;
});

/** An OTLP/HTTP collector stand-in on 127.0.0.1 that records the paths it was posted to. */
async function collector() {
  const posts: string[] = [];
  const server = createServer((req: IncomingMessage, res) => {
    req.resume();
    req.on("end", () => {
      posts.push(`${req.method} ${req.url} ${req.headers["content-type"]}`);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  close = () => server.close();
  const { port } = server.address() as { port: number };
  return { posts, base: `http://127.0.0.1:${port}` };
}

describe("trace exporters", () => {
  it("console writes each span as a JSON line to the gateway log", async () => {
    const lines: Array<Record<string, unknown>> = [];
    const logger = createLogger({ sink: (line) => lines.push(JSON.parse(line)) });
    const config = TelemetrySchema.parse({ traces: { exporter: "console" }, metrics: { process: false } });
    telemetry = createTelemetry({ ...telemetryOptions(config, {}), logger });
    await telemetry.serverSpan({ method: "tools/list", transport: "pipe" }, async () => ({}));
    const span = lines.find((l) => l.msg === "span");
    expect(span).toMatchObject({ span: "tools/list", attributes: { "mcp.method.name": "tools/list" } });
    expect(span?.trace_id).toMatch(/^[0-9a-f]{32}$/);
  });

  it("otlp posts spans to the configured endpoint on shutdown", async () => {
    const { posts, base } = await collector();
    const config = TelemetrySchema.parse({ metrics: { process: false } });
    telemetry = createTelemetry(
      telemetryOptions(config, { OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_ENDPOINT: base }),
    );
    await telemetry.serverSpan({ method: "tools/list", transport: "tcp" }, async () => ({}));
    await telemetry.shutdown();
    telemetry = undefined;
    expect(posts.some((p) => p.startsWith("POST /v1/traces"))).toBe(true);
  });

  it("creates no span at all when no exporter is configured", async () => {
    const config = TelemetrySchema.parse({ metrics: { process: false } });
    telemetry = createTelemetry(telemetryOptions(config, {}));
    const seen = await telemetry.serverSpan({ method: "tools/list", transport: "tcp" }, async () =>
      Boolean(trace.getSpan(context.active())?.isRecording()),
    );
    expect(seen).toBe(false);
  });
});

describe("metric exporters", () => {
  it("otlp pushes metrics to the configured endpoint", async () => {
    const { posts, base } = await collector();
    const config = TelemetrySchema.parse({
      metrics: { process: false, otlp: { endpoint: `${base}/v1/metrics`, intervalMs: 60_000 } },
    });
    telemetry = createTelemetry(telemetryOptions(config, {}));
    telemetry.recordCall({ tool: "a__b", upstream: "a", outcome: "ok", durationMs: 1 });
    await telemetry.shutdown(); // flushes the periodic reader
    telemetry = undefined;
    expect(posts.some((p) => p.startsWith("POST /v1/metrics"))).toBe(true);
  });

  it("answers 404 on /metrics when Prometheus is off", async () => {
    const config = TelemetrySchema.parse({ metrics: { process: false, prometheus: false } });
    telemetry = createTelemetry(telemetryOptions(config, {}));
    expect(await telemetry.scrape()).toBeUndefined();
  });

  it("exports nothing and makes no span with OTEL_SDK_DISABLED=true", async () => {
    const { posts, base } = await collector();
    const config = TelemetrySchema.parse({ metrics: { process: false } });
    telemetry = createTelemetry(
      telemetryOptions(config, {
        OTEL_SDK_DISABLED: "true",
        OTEL_TRACES_EXPORTER: "otlp",
        OTEL_METRICS_EXPORTER: "otlp",
        OTEL_EXPORTER_OTLP_ENDPOINT: base,
      }),
    );
    await telemetry.serverSpan({ method: "tools/list", transport: "tcp" }, async () => {
      expect(trace.getSpan(context.active())).toBeUndefined();
      return {};
    });
    expect(await telemetry.scrape()).toBeUndefined();
    await telemetry.shutdown();
    telemetry = undefined;
    expect(posts).toEqual([]);
  });
});
