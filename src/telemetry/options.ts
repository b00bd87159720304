/**
 * Telemetry options: the config's `telemetry` section, overridden by the standard OTEL_* environment
 * variables when they are set (OTEL_SERVICE_NAME, OTEL_TRACES_EXPORTER, OTEL_METRICS_EXPORTER,
 * OTEL_EXPORTER_OTLP_ENDPOINT and its _TRACES_/_METRICS_ forms, OTEL_METRIC_EXPORT_INTERVAL,
 * OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG). Unlike the OTel SDK default, no trace exporter runs
 * unless one is asked for, and Prometheus is served unless the config turns it off.
 */
import type { MetricReader } from "@opentelemetry/sdk-metrics";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { AlertRules, TelemetryConfig } from "../config/telemetry-schema.ts";
import { ErrorCode, GatewayError } from "../errors.ts";
import type { Logger } from "./log.ts";

export const SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type SamplerName = (typeof SAMPLERS)[number];
export type TraceExporterName = TelemetryConfig["traces"]["exporter"];

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** `service.instance.id` of the resource: the replica (cluster.instanceId). */
  serviceInstanceId?: string;
  traces: { exporter: TraceExporterName; endpoint?: string; sampler: SamplerName; sampleRatio: number };
  metrics: { prometheus: boolean; otlp?: { endpoint: string; intervalMs: number }; process: boolean };
  alerts: AlertRules;
  alertWebhook?: string;
  /** Window of the status page's per-tool stats. Default 5 minutes. */
  statsWindowMs?: number;
  logger?: Logger;
  /** Clock of stats and alerts (tests). */
  now?: () => number;
  /** Tests: every span goes here at once, whatever `traces.exporter` says (tracing is on). */
  spanExporter?: SpanExporter;
  /** Tests: extra metric readers, e.g. an in-memory one. */
  metricReaders?: MetricReader[];
}

export type Env = Readonly<Record<string, string | undefined>>;

const DEFAULT_OTLP = "http://localhost:4318";

/** Options from the parsed `telemetry` config and the environment (main.ts passes process.env). */
export function telemetryOptions(
  config: TelemetryConfig,
  env: Env = {},
  service: { name?: string; version?: string } = {},
): TelemetryOptions {
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT)?.replace(/\/+$/, "");
  const traceExporter = envTraceExporter(env.OTEL_TRACES_EXPORTER) ?? config.traces.exporter;
  const tracesEndpoint =
    nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ??
    (base && `${base}/v1/traces`) ??
    config.traces.endpoint ??
    `${DEFAULT_OTLP}/v1/traces`;
  const metricExporters = list(env.OTEL_METRICS_EXPORTER);
  const otlpMetrics = metricExporters ? metricExporters.includes("otlp") : config.metrics.otlp !== undefined;
  const interval = nonEmpty(env.OTEL_METRIC_EXPORT_INTERVAL);
  const metricsEndpoint =
    nonEmpty(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) ??
    (base && `${base}/v1/metrics`) ??
    config.metrics.otlp?.endpoint ??
    `${DEFAULT_OTLP}/v1/metrics`;
  const { sampler, ratio } = envSampler(env, config.traces.sampleRatio);
  const options: TelemetryOptions = {
    serviceName: nonEmpty(env.OTEL_SERVICE_NAME) ?? service.name ?? "toolgate",
    traces: { exporter: traceExporter, sampler, sampleRatio: ratio },
    metrics: { prometheus: config.metrics.prometheus, process: config.metrics.process },
    alerts: config.alerts,
  };
  if (service.version) options.serviceVersion = service.version;
  if (traceExporter === "otlp") options.traces.endpoint = tracesEndpoint;
  if (otlpMetrics) {
    options.metrics.otlp = {
      endpoint: metricsEndpoint,
      intervalMs: interval
        ? positiveInt("OTEL_METRIC_EXPORT_INTERVAL", interval)
        : (config.metrics.otlp?.intervalMs ?? 60_000),
    };
  }
  if (config.alertWebhook) options.alertWebhook = config.alertWebhook;
  return options;
}

function envTraceExporter(value: string | undefined): TraceExporterName | undefined {
  const names = list(value);
  if (!names) return undefined;
  for (const name of names) {
    if (name !== "otlp" && name !== "console" && name !== "none") {
      throw invalid(`OTEL_TRACES_EXPORTER "${name}" is not supported; use otlp, console or none`);
    }
  }
  if (names.includes("otlp")) return "otlp";
  if (names.includes("console")) return "console";
  return "none";
}

function envSampler(env: Env, configRatio: number): { sampler: SamplerName; ratio: number } {
  const name = nonEmpty(env.OTEL_TRACES_SAMPLER)?.toLowerCase() ?? "parentbased_traceidratio";
  if (!(SAMPLERS as readonly string[]).includes(name)) {
    throw invalid(`OTEL_TRACES_SAMPLER "${name}" is not supported; use one of ${SAMPLERS.join(", ")}`);
  }
  const arg = nonEmpty(env.OTEL_TRACES_SAMPLER_ARG);
  const ratio = arg === undefined ? configRatio : Number(arg);
  if (!(ratio >= 0 && ratio <= 1)) {
    throw invalid(`OTEL_TRACES_SAMPLER_ARG "${arg}" must be a number from 0 to 1`);
  }
  return { sampler: name as SamplerName, ratio };
}

function positiveInt(name: string, value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw invalid(`${name} "${value}" must be a positive integer (ms)`);
  return n;
}

function list(value: string | undefined): string[] | undefined {
  const items = value
    ?.split(",")
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
  return items?.length ? items : undefined;
}

function nonEmpty(value: string | undefined): string | undefined {
  const trimmed = value?.trim();
  return trimmed ? trimmed : undefined;
}

function invalid(message: string): GatewayError {
  return new GatewayError(ErrorCode.ConfigInvalid, message, { policy: "telemetry" });
}
