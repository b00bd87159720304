/**
 * Builds the OTel SDK for one gateway: a tracer provider only when something consumes spans, a meter
 * provider with the Prometheus reader (served by the gateway's own /metrics, no server of its own), an
 * optional OTLP push reader, and process/runtime metrics from the OTel packages. Providers are not
 * registered globally (several gateways can live in one test process); only the async-local context
 * manager is, because `context.with` needs one.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { context, type Tracer, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { PrometheusExporter, PrometheusSerializer } from "@opentelemetry/exporter-prometheus";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-http";
import { HostMetrics } from "@opentelemetry/host-metrics";
import { RuntimeNodeInstrumentation } from "@opentelemetry/instrumentation-runtime-node";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { type IMetricReader, MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
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
import { AlertManager } from "./alerts.ts";
import { silentLogger } from "./log.ts";
import { LogSpanExporter } from "./log-span-exporter.ts";
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION, SCOPE_NAME } from "./names.ts";
import type { SamplerName, TelemetryOptions } from "./options.ts";
import { RollingStats } from "./stats.ts";
import { Telemetry } from "./telemetry.ts";

let contextManagerReady = false;
const PROMETHEUS_OFF = "Prometheus metrics are off (telemetry.metrics.prometheus: false)";

export function createTelemetry(options: TelemetryOptions): Telemetry {
  ensureContextManager();
  const logger = options.logger ?? silentLogger;
  const resource = resourceFromAttributes({
    [ATTR_SERVICE_NAME]: options.serviceName,
    ...(options.serviceVersion && { [ATTR_SERVICE_VERSION]: options.serviceVersion }),
    ...(options.serviceInstanceId && { "service.instance.id": options.serviceInstanceId }),
  });

  const processor = spanProcessor(options);
  const tracerProvider = processor
    ? new BasicTracerProvider({ resource, sampler: sampler(options), spanProcessors: [processor] })
    : undefined;
  const tracer: Tracer =
    tracerProvider?.getTracer(SCOPE_NAME) ?? trace.getTracerProvider().getTracer(SCOPE_NAME);

  const serializer = new PrometheusSerializer(undefined, false, undefined, false, true);
  const prometheus = options.metrics.prometheus
    ? new PrometheusExporter({ preventServerStart: true, withoutScopeInfo: true })
    : undefined;
  // IMetricReader, not MetricReader: the Prometheus exporter pins its own copy of sdk-metrics.
  const readers: IMetricReader[] = [...(options.metricReaders ?? [])];
  if (prometheus) readers.push(prometheus);
  if (options.metrics.otlp) {
    readers.push(
      new PeriodicExportingMetricReader({
        exporter: new OTLPMetricExporter({ url: options.metrics.otlp.endpoint }),
        exportIntervalMillis: options.metrics.otlp.intervalMs,
      }),
    );
  }
  const meterProvider = new MeterProvider({ resource, readers });

  let runtime: RuntimeNodeInstrumentation | undefined;
  if (options.metrics.process) {
    new HostMetrics({ meterProvider, metricGroups: ["process.cpu", "process.memory"] }).start();
    runtime = new RuntimeNodeInstrumentation({ enabled: false });
    runtime.setMeterProvider(meterProvider);
    runtime.enable();
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

  return new Telemetry({
    tracer,
    tracing: tracerProvider !== undefined,
    meter: meterProvider.getMeter(SCOPE_NAME),
    stats,
    alerts,
    metricsHandler: (req: IncomingMessage, res: ServerResponse) => {
      if (prometheus) {
        prometheus.getMetricsRequestHandler(req, res);
        return;
      }
      res.statusCode = 404;
      res.end(`${PROMETHEUS_OFF}\n`);
    },
    scrape: async () => {
      if (!prometheus) return undefined;
      const { resourceMetrics, errors } = await prometheus.collect();
      if (errors.length) logger.warn("metrics collection had errors", { errors });
      return serializer.serialize(resourceMetrics);
    },
    shutdown: async () => {
      runtime?.disable();
      const results = await Promise.allSettled([tracerProvider?.shutdown(), meterProvider.shutdown()]);
      for (const r of results) {
        if (r.status === "rejected")
          logger.warn("telemetry shutdown: an exporter failed to flush", { err: r.reason });
      }
    },
  });
}

function ensureContextManager(): void {
  if (contextManagerReady) return;
  // A context manager registered by someone else (e.g. an APM agent) is fine too: setGlobal then returns false.
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  contextManagerReady = true;
}

function spanProcessor(options: TelemetryOptions): SpanProcessor | undefined {
  if (options.spanExporter) return new SimpleSpanProcessor(options.spanExporter);
  switch (options.traces.exporter) {
    case "none":
      return undefined;
    case "console":
      return new SimpleSpanProcessor(new LogSpanExporter(options.logger ?? silentLogger));
    case "otlp":
      return new BatchSpanProcessor(new OTLPTraceExporter({ url: options.traces.endpoint }));
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
