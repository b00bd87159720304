/**
 * The `telemetry` section of the config: traces, metrics, alert rules. Every default is here; the
 * standard OTEL_* environment variables override it (see `telemetryOptions` in src/telemetry/setup.ts).
 * Nothing costly is on by default: no trace exporter, Prometheus served from the gateway's own /metrics.
 */
import { z } from "zod";
import { ms, msAtLeast } from "./duration.ts";

const positiveInt = z.number().int().positive();
const percent = z.number().min(0).max(100);
const httpUrl = z.url({ protocol: /^https?$/ });

const TracesSchema = z.strictObject({
  /** `console` writes spans as JSON lines to the gateway log (stderr), never to stdout. */
  exporter: z.enum(["none", "otlp", "console"]).default("none"),
  /** OTLP/HTTP traces URL (e.g. `http://127.0.0.1:4318/v1/traces`). */
  endpoint: httpUrl.optional(),
  /** Share of new traces sampled; a sampled parent from the client is always followed. */
  sampleRatio: z.number().min(0).max(1).default(1),
});

const MetricsSchema = z.strictObject({
  /** Serve Prometheus text at the gateway's `/metrics` (operators only when authentication is on). */
  prometheus: z.boolean().default(true),
  /**
   * Also serve `/metrics` alone, without authentication, on this `host:port` (e.g. `10.0.0.5:9464`): for a
   * scraper on a private network. Off by default.
   */
  listen: z
    .string()
    .regex(/^(\[[0-9a-fA-F:.]+\]|[^\s:]+):\d{1,5}$/, "must be host:port, e.g. 127.0.0.1:9464")
    .optional(),
  /** Also push metrics over OTLP/HTTP. */
  otlp: z
    .strictObject({
      /** OTLP/HTTP metrics URL (e.g. `http://127.0.0.1:4318/v1/metrics`). */
      endpoint: httpUrl,
      intervalMs: msAtLeast().default(60_000),
    })
    .optional(),
  /** Process and runtime metrics (CPU, memory, event loop, GC). */
  process: z.boolean().default(true),
});

export const AlertRulesSchema = z.strictObject({
  enabled: z.boolean().default(true),
  /** How often rules are evaluated. */
  intervalMs: msAtLeast().default(15_000),
  /** A tool's failure rate (tool errors excluded) over the window. */
  errorRate: z
    .strictObject({
      enabled: z.boolean().default(true),
      thresholdPercent: percent.default(20),
      windowMs: msAtLeast().default(300_000),
      /** Calls needed in the window before the rate counts. */
      minCalls: positiveInt.default(20),
    })
    .prefault({}),
  /** A tool's p95 latency over the window. */
  latency: z
    .strictObject({
      enabled: z.boolean().default(true),
      p95Ms: msAtLeast().default(10_000),
      windowMs: msAtLeast().default(300_000),
      minCalls: positiveInt.default(20),
    })
    .prefault({}),
  /** A circuit breaker is open. */
  breakerOpen: z.strictObject({ enabled: z.boolean().default(true) }).prefault({}),
  /** An upstream has not been connected for `forMs`. */
  upstreamDown: z
    .strictObject({
      enabled: z.boolean().default(true),
      forMs: ms.default(30_000),
    })
    .prefault({}),
  /** A tool's queue is filled above the threshold (queued / queue size). */
  queueSaturation: z
    .strictObject({ enabled: z.boolean().default(true), thresholdPercent: percent.default(80) })
    .prefault({}),
  /** The event loop's p99 delay since the last evaluation. */
  eventLoopLag: z
    .strictObject({ enabled: z.boolean().default(true), p99Ms: msAtLeast().default(200) })
    .prefault({}),
});

/** The status page's charts: one point per `stepMs`, `points` of them (default: an hour of 30 s points). */
const HistorySchema = z.strictObject({
  stepMs: msAtLeast(100).default(30_000),
  points: z.number().int().min(2).max(2_880).default(120),
});

export const TelemetrySchema = z.strictObject({
  traces: TracesSchema.prefault({}),
  history: HistorySchema.prefault({}),
  metrics: MetricsSchema.prefault({}),
  alerts: AlertRulesSchema.prefault({}),
  /** Firing and resolved alerts are POSTed here as JSON (fire and forget). */
  alertWebhook: httpUrl.optional(),
});

export type TelemetryConfigInput = z.input<typeof TelemetrySchema>;
export type TelemetryConfig = z.output<typeof TelemetrySchema>;
export type AlertRules = z.output<typeof AlertRulesSchema>;
