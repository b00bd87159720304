/**
 * Telemetry options: the config's `telemetry` section, overridden by the standard OTEL_* environment
 * variables when they are set (OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_EXPORTER,
 * OTEL_METRICS_EXPORTER, OTEL_EXPORTER_OTLP_ENDPOINT / _PROTOCOL and their _TRACES_/_METRICS_ forms,
 * OTEL_METRIC_EXPORT_INTERVAL, OTEL_TRACES_SAMPLER, OTEL_TRACES_SAMPLER_ARG). Unlike the OTel SDK default,
 * no trace exporter runs unless one is asked for, and Prometheus is served unless the config turns it off.
 * The rest of the standard variables (OTEL_EXPORTER_OTLP_HEADERS, _TIMEOUT, _COMPRESSION, certificates,
 * OTEL_BSP_*, span limits, OTEL_PROPAGATORS, OTEL_SDK_DISABLED, OTEL_LOG_LEVEL, resource detectors) are
 * read by the exporters and, for `serve`, by the OTel NodeSDK itself (setup.ts).
 */
import type { MetricReader } from "@opentelemetry/sdk-metrics";
import type { SpanExporter } from "@opentelemetry/sdk-trace-base";
import type { AlertRules, TelemetryConfig } from "../config/telemetry-schema.ts";
import { ErrorCode, GatewayError } from "../errors.ts";
import type { Logger } from "./log.ts";

const SAMPLERS = [
  "always_on",
  "always_off",
  "traceidratio",
  "parentbased_always_on",
  "parentbased_always_off",
  "parentbased_traceidratio",
] as const;
export type SamplerName = (typeof SAMPLERS)[number];
type TraceExporterName = TelemetryConfig["traces"]["exporter"];
const OTLP_PROTOCOLS = ["http/protobuf", "http/json", "grpc"] as const;
export type OtlpProtocol = (typeof OTLP_PROTOCOLS)[number];

export interface TelemetryOptions {
  serviceName: string;
  serviceVersion?: string;
  /** `service.instance.id` of the resource: the replica (cluster.instanceId). */
  serviceInstanceId?: string;
  traces: {
    exporter: TraceExporterName;
    endpoint?: string;
    protocol?: OtlpProtocol;
    sampler: SamplerName;
    sampleRatio: number;
  };
  metrics: {
    prometheus: boolean;
    otlp?: { endpoint: string; intervalMs: number; protocol: OtlpProtocol };
    process: boolean;
  };
  /** Resource attributes from OTEL_RESOURCE_ATTRIBUTES (service.instance.id defaults to a random UUID). */
  resourceAttributes?: Record<string, string>;
  /**
   * The gateway owns the process (`toolgate serve`): the OTel NodeSDK sets OpenTelemetry up globally and
   * reads the standard variables itself. Off for gateways embedded in another process (tests).
   */
  processWide?: boolean;
  /** OTEL_SDK_DISABLED=true: no spans, no metrics (/metrics says so), nothing exported. */
  sdkDisabled?: boolean;
  alerts: AlertRules;
  alertWebhook?: string;
  /** The status page's charts (src/telemetry/history.ts). */
  history?: { stepMs: number; points: number };
  /** Window of the status page's per-tool stats. Default 5 minutes. */
  statsWindowMs?: number;
  logger?: Logger;
  /** Clock of stats and alerts (tests). */
  now?: () => number;
  /** Tests: every span goes here at once, whatever `traces.exporter` says (tracing is on). */
  spanExporter?: SpanExporter;
  /** Tests: extra metric readers, e.g. an in-memory one. */
  metricReaders?: MetricReader[];
  /**
   * Tests: false records the per-call metrics through OTel instruments, as the native aggregation's
   * reference (it is also used whenever a reader wants other than cumulative, default aggregation).
   */
  nativeMetrics?: boolean;
}

export type Env = Readonly<Record<string, string | undefined>>;

const DEFAULT_OTLP_HTTP = "http://localhost:4318";
const DEFAULT_OTLP_GRPC = "http://localhost:4317";

/** Options from the parsed `telemetry` config and the environment (main.ts passes process.env). */
export function telemetryOptions(
  config: TelemetryConfig,
  env: Env = {},
  service: { name?: string; version?: string } = {},
): TelemetryOptions {
  const base = nonEmpty(env.OTEL_EXPORTER_OTLP_ENDPOINT)?.replace(/\/+$/, "");
  const traceExporter = envTraceExporter(env.OTEL_TRACES_EXPORTER) ?? config.traces.exporter;
  const tracesProtocol = protocol(env, "TRACES");
  // OTLP/HTTP appends the signal's path to the base endpoint; gRPC takes the endpoint as it is.
  const tracesEndpoint =
    nonEmpty(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ??
    (base && (tracesProtocol === "grpc" ? base : `${base}/v1/traces`)) ??
    config.traces.endpoint ??
    (tracesProtocol === "grpc" ? DEFAULT_OTLP_GRPC : `${DEFAULT_OTLP_HTTP}/v1/traces`);
  const metricExporters = list(env.OTEL_METRICS_EXPORTER);
  const otlpMetrics = metricExporters ? metricExporters.includes("otlp") : config.metrics.otlp !== undefined;
  const interval = nonEmpty(env.OTEL_METRIC_EXPORT_INTERVAL);
  const metricsProtocol = protocol(env, "METRICS");
  const metricsEndpoint =
    nonEmpty(env.OTEL_EXPORTER_OTLP_METRICS_ENDPOINT) ??
    (base && (metricsProtocol === "grpc" ? base : `${base}/v1/metrics`)) ??
    config.metrics.otlp?.endpoint ??
    (metricsProtocol === "grpc" ? DEFAULT_OTLP_GRPC : `${DEFAULT_OTLP_HTTP}/v1/metrics`);
  const resourceAttributes = parseResourceAttributes(env.OTEL_RESOURCE_ATTRIBUTES);
  const { sampler, ratio } = envSampler(env, config.traces.sampleRatio);
  const options: TelemetryOptions = {
    serviceName:
      nonEmpty(env.OTEL_SERVICE_NAME) ?? resourceAttributes["service.name"] ?? service.name ?? "toolgate",
    traces: { exporter: traceExporter, sampler, sampleRatio: ratio },
    metrics: { prometheus: config.metrics.prometheus, process: config.metrics.process },
    alerts: config.alerts,
    history: config.history,
  };
  if (service.version) options.serviceVersion = service.version;
  if (Object.keys(resourceAttributes).length) options.resourceAttributes = resourceAttributes;
  if (nonEmpty(env.OTEL_SDK_DISABLED)?.toLowerCase() === "true") options.sdkDisabled = true;
  if (traceExporter === "otlp") {
    options.traces.endpoint = tracesEndpoint;
    options.traces.protocol = tracesProtocol;
  }
  if (otlpMetrics) {
    options.metrics.otlp = {
      endpoint: metricsEndpoint,
      protocol: metricsProtocol,
      intervalMs: interval
        ? positiveInt("OTEL_METRIC_EXPORT_INTERVAL", interval)
        : (config.metrics.otlp?.intervalMs ?? 60_000),
    };
  }
  if (config.alertWebhook) options.alertWebhook = config.alertWebhook;
  return options;
}

/** OTEL_EXPORTER_OTLP_{signal}_PROTOCOL, then OTEL_EXPORTER_OTLP_PROTOCOL; the spec's default is http/protobuf. */
function protocol(env: Env, signal: "TRACES" | "METRICS"): OtlpProtocol {
  const name = `OTEL_EXPORTER_OTLP_${signal}_PROTOCOL`;
  const [variable, value] = nonEmpty(env[name])
    ? [name, nonEmpty(env[name])]
    : ["OTEL_EXPORTER_OTLP_PROTOCOL", nonEmpty(env.OTEL_EXPORTER_OTLP_PROTOCOL)];
  if (value === undefined) return "http/protobuf";
  if (!(OTLP_PROTOCOLS as readonly string[]).includes(value)) {
    throw invalid(`${variable} "${value}" is not supported; use one of ${OTLP_PROTOCOLS.join(", ")}`);
  }
  return value as OtlpProtocol;
}

/** `key=value,key2=value2`, values percent-encoded (W3C Baggage octets), as the OTel spec defines it. */
function parseResourceAttributes(value: string | undefined): Record<string, string> {
  const attributes: Record<string, string> = {};
  for (const pair of nonEmpty(value)?.split(",") ?? []) {
    if (!pair.trim()) continue;
    const eq = pair.indexOf("=");
    const key = pair.slice(0, eq).trim();
    if (eq <= 0 || !key) {
      throw invalid(`OTEL_RESOURCE_ATTRIBUTES: "${pair.trim()}" is not key=value`);
    }
    try {
      attributes[key] = decodeURIComponent(pair.slice(eq + 1).trim());
    } catch {
      throw invalid(`OTEL_RESOURCE_ATTRIBUTES: the value of "${key}" is not valid percent-encoding`);
    }
  }
  return attributes;
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
