/**
 * Builds the OTel SDK for one gateway: a tracer provider only when something consumes spans, a meter
 * provider with the Prometheus reader (served by the gateway's own /metrics, no server of its own), an
 * optional OTLP push reader (gRPC, HTTP/protobuf or HTTP/JSON), and process/runtime metrics from the OTel
 * packages. The resource carries service.name/version, a random service.instance.id and
 * OTEL_RESOURCE_ATTRIBUTES. `toolgate serve` owns its process, so there the OTel NodeSDK sets this up and
 * registers it globally (`processWide`); otherwise providers stay local (several gateways can live in one
 * test process) and only the async-local context manager is registered, because `context.with` needs one.
 */
import { randomUUID } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  context,
  type MeterProvider as MeterProviderApi,
  metrics,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { HostMetrics } from "@opentelemetry/host-metrics";
import { RuntimeNodeInstrumentation } from "@opentelemetry/instrumentation-runtime-node";
import { type Resource, resourceFromAttributes } from "@opentelemetry/resources";
import { type IMetricReader, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { NodeSDK } from "@opentelemetry/sdk-node";
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BasicTracerProvider,
  BatchSpanProcessor,
  ParentBasedSampler,
  type Sampler,
  SimpleSpanProcessor,
  type SpanProcessor,
  TraceIdRatioBasedSampler,
} from "@opentelemetry/sdk-trace-base";
import { aggregatesNatively, NativeMetrics } from "./aggregation.ts";
import { AlertManager } from "./alerts.ts";
import { History } from "./history.ts";
import { type Logger, silentLogger } from "./log.ts";
import { LogSpanExporter } from "./log-span-exporter.ts";
import { LOOP_DELAY_VIEW, observeLoopDelay } from "./loop-delay.ts";
import {
  ATTR_SERVICE_INSTANCE_ID,
  ATTR_SERVICE_NAME,
  ATTR_SERVICE_VERSION,
  ATTR_VERSION,
  METRIC_BUILD_INFO,
  SCOPE_NAME,
} from "./names.ts";
import type { SamplerName, TelemetryOptions } from "./options.ts";
import { otlpMetricExporter, otlpTraceExporter } from "./otlp.ts";
import { renameForPrometheus } from "./prometheus-names.ts";
import { RollingStats } from "./stats.ts";
import { Telemetry } from "./telemetry.ts";

let contextManagerReady = false;
/**
 * The runtime instrumentation's own delay histogram feeds only gauges that LOOP_DELAY_VIEW drops: sampled once a
 * second, it wakes the loop as little as it can.
 */
const UNUSED_SAMPLE_MS = 1_000;
const PROMETHEUS_OFF =
  "Prometheus metrics are off (telemetry.metrics.prometheus: false or OTEL_SDK_DISABLED=true)";

export function createTelemetry(options: TelemetryOptions): Telemetry {
  const logger = options.logger ?? silentLogger;
  const resource = resourceFromAttributes({
    // service.instance.id: OTEL_RESOURCE_ATTRIBUTES, else the replica's id (cluster.instanceId), else random.
    [ATTR_SERVICE_INSTANCE_ID]: options.serviceInstanceId ?? randomUUID(),
    ...options.resourceAttributes,
    [ATTR_SERVICE_NAME]: options.serviceName,
    ...(options.serviceVersion && { [ATTR_SERVICE_VERSION]: options.serviceVersion }),
  });

  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  const prometheus =
    options.metrics.prometheus && !options.sdkDisabled
      ? new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true })
      : undefined;
  // IMetricReader, not MetricReader: the Prometheus exporter pins its own copy of sdk-metrics.
  const readers: IMetricReader[] = [...(options.metricReaders ?? [])];
  if (prometheus) readers.push(prometheus);
  if (options.metrics.otlp && !options.sdkDisabled) {
    const { protocol, endpoint, intervalMs } = options.metrics.otlp;
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: otlpMetricExporter(protocol, endpoint),
        exportIntervalMillis: intervalMs,
      }),
    );
  }
  // The per-call metrics are aggregated by the gateway itself when every reader wants what it reproduces.
  const native =
    options.nativeMetrics !== false && !options.sdkDisabled && readers.every(aggregatesNatively)
      ? new NativeMetrics({ name: SCOPE_NAME, version: "" })
      : undefined;
  for (const reader of readers) native?.attach(reader);
  const runtime = options.metrics.process
    ? new RuntimeNodeInstrumentation({ enabled: false, monitoringPrecision: UNUSED_SAMPLE_MS })
    : undefined;
  const parts = options.processWide
    ? startNodeSdk({ options, resource, readers, runtime, logger })
    : localProviders({ options, resource, readers, runtime, logger });
  const meter = parts.meterProvider.getMeter(SCOPE_NAME);
  const stopLoopDelay = options.metrics.process ? observeLoopDelay(meter) : undefined;
  native?.note(METRIC_BUILD_INFO);
  meter
    .createObservableGauge(METRIC_BUILD_INFO, { description: "Always 1; marks a toolgate process." })
    .addCallback((result) => result.observe(1, { [ATTR_VERSION]: options.serviceVersion ?? "unknown" }));
  if (options.metrics.process) {
    new HostMetrics({
      meterProvider: parts.meterProvider,
      metricGroups: ["process.cpu", "process.memory"],
    }).start();
  }

  const stats = new RollingStats({
    ...(options.statsWindowMs !== undefined && { windowMs: options.statsWindowMs }),
    ...(options.now && { now: options.now }),
  });
  const alerts = new AlertManager({
    rules: options.alerts,
    stats,
    logger: logger.child({ component: "alerts" }),
    service: options.serviceName,
    ...(options.alertWebhook && { webhook: options.alertWebhook }),
    ...(options.now && { now: options.now }),
  });

  const scrape = async () => {
    if (!prometheus) return undefined;
    const { resourceMetrics, errors } = await prometheus.collect();
    if (errors.length) logger.warn("metrics collection had errors", { errors });
    return serializer.serialize(renameForPrometheus(resourceMetrics));
  };

  return new Telemetry({
    tracer: parts.tracer,
    tracing: parts.tracing,
    meter,
    ...(native && { native }),
    stats,
    history: new History({ ...options.history, ...(options.now && { now: options.now }) }),
    alerts,
    scrape,
    metricsHandler: (_req: IncomingMessage, res: ServerResponse) => {
      scrape().then(
        (text) => {
          if (text === undefined) res.writeHead(404).end(`${PROMETHEUS_OFF}\n`);
          else res.writeHead(200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }).end(text);
        },
        () => res.writeHead(500).end(),
      );
    },
    shutdown: async () => {
      runtime?.disable();
      stopLoopDelay?.();
      const results = await Promise.allSettled([parts.shutdown()]);
      for (const r of results) {
        if (r.status === "rejected")
          logger.warn("telemetry shutdown: an exporter failed to flush", { err: r.reason });
      }
    },
  });
}

interface ProviderInput {
  options: TelemetryOptions;
  resource: Resource;
  readers: IMetricReader[];
  runtime: RuntimeNodeInstrumentation | undefined;
  logger: Logger;
}

interface Providers {
  tracer: Tracer;
  tracing: boolean;
  meterProvider: MeterProvider | MeterProviderApi;
  shutdown(): Promise<unknown>;
}

/** Providers of this gateway alone, not registered globally: several gateways can share a process (tests). */
function localProviders({ options, resource, readers, runtime }: ProviderInput): Providers {
  ensureContextManager();
  const processor = spanProcessor(options);
  const tracerProvider = processor
    ? new BasicTracerProvider({ resource, sampler: sampler(options), spanProcessors: [processor] })
    : undefined;
  const meterProvider = new MeterProvider({ resource, readers, views: [LOOP_DELAY_VIEW] });
  if (runtime) {
    runtime.setMeterProvider(meterProvider);
    runtime.enable();
  }
  return {
    tracer: tracerProvider?.getTracer(SCOPE_NAME) ?? trace.getTracerProvider().getTracer(SCOPE_NAME),
    tracing: tracerProvider !== undefined,
    meterProvider,
    shutdown: () => Promise.all([tracerProvider?.shutdown(), meterProvider.shutdown()]),
  };
}

/**
 * `toolgate serve` owns its process: the OTel NodeSDK registers the providers globally and reads the
 * standard variables it knows (resource detectors and OTEL_RESOURCE_ATTRIBUTES, OTEL_PROPAGATORS, OTEL_BSP_*,
 * span limits, OTEL_SDK_DISABLED, OTEL_LOG_LEVEL). Exporters and readers are the ones the options chose, so
 * nothing runs that the config did not ask for (the SDK's own default would push traces and logs to OTLP).
 */
function startNodeSdk({ options, resource, readers, runtime, logger }: ProviderInput): Providers {
  const traces = options.traces;
  const otlp = traces.exporter === "otlp" && traces.endpoint;
  const sdk = new NodeSDK({
    resource,
    serviceName: options.serviceName,
    metricReaders: readers,
    views: [LOOP_DELAY_VIEW],
    ...(otlp
      ? { traceExporter: otlpTraceExporter(traces.protocol ?? "http/protobuf", otlp) }
      : {
          spanProcessors:
            traces.exporter === "console" ? [new SimpleSpanProcessor(new LogSpanExporter(logger))] : [],
        }),
    sampler: sampler(options),
    logRecordProcessors: [],
    instrumentations: runtime ? [runtime] : [],
  });
  sdk.start();
  const tracing = traces.exporter !== "none" && !options.sdkDisabled;
  return {
    tracer: trace.getTracer(SCOPE_NAME),
    tracing,
    meterProvider: metrics.getMeterProvider(),
    shutdown: () => sdk.shutdown(),
  };
}

function ensureContextManager(): void {
  if (contextManagerReady) return;
  // A context manager registered by someone else (e.g. an APM agent) is fine too: setGlobal then returns false.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  contextManagerReady = true;
}

function spanProcessor(options: TelemetryOptions): SpanProcessor | undefined {
  if (options.sdkDisabled) return undefined;
  if (options.spanExporter) return new SimpleSpanProcessor(options.spanExporter);
  switch (options.traces.exporter) {
    case "none":
      return undefined;
    case "console":
      return new SimpleSpanProcessor(new LogSpanExporter(options.logger ?? silentLogger));
    case "otlp":
      return new BatchSpanProcessor(
        otlpTraceExporter(options.traces.protocol ?? "http/protobuf", options.traces.endpoint ?? ""),
      );
  }
}

function sampler(options: TelemetryOptions): Sampler {
  const { sampler: name, sampleRatio } = options.traces;
  const root: Record<SamplerName, () => Sampler> = {
    always_on: () => new AlwaysOnSampler(),
    always_off: () => new AlwaysOffSampler(),
    traceidratio: () => new TraceIdRatioBasedSampler(sampleRatio),
    parentbased_always_on: () => new ParentBasedSampler({ root: new AlwaysOnSampler() }),
    parentbased_always_off: () => new ParentBasedSampler({ root: new AlwaysOffSampler() }),
    parentbased_traceidratio: () =>
      new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(sampleRatio) }),
  };
  return root[name]();
}
