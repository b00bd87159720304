import { describe, expect, it } from "vitest";
import { TelemetrySchema } from "../../../src/config/telemetry-schema.ts";
import { ErrorCode } from "../../../src/errors.ts";
import { telemetryOptions } from "../../../src/telemetry/options.ts";

const defaults = TelemetrySchema.parse({});

describe("TelemetrySchema", () => {
  it("defaults to no trace exporter, Prometheus on and every alert rule on", () => {
    expect(defaults.traces).toEqual({ exporter: "none", sampleRatio: 1 });
    expect(defaults.metrics).toEqual({ prometheus: true, process: true });
    expect(defaults.alerts.errorRate).toEqual({
      enabled: true,
      thresholdPercent: 20,
      windowMs: 300_000,
      minCalls: 20,
    });
    expect(defaults.alerts.upstreamDown.forMs).toBe(30_000);
  });

  it("fills the defaults of a rule that is partly configured", () => {
    const parsed = TelemetrySchema.parse({ alerts: { latency: { p95Ms: 2_000 } } });
    expect(parsed.alerts.latency).toEqual({ enabled: true, p95Ms: 2_000, windowMs: 300_000, minCalls: 20 });
  });

  it("rejects unknown keys with their path", () => {
    const result = TelemetrySchema.safeParse({ alerts: { errorRate: { treshold: 5 } } });
    expect(result.success).toBe(false);
    expect(result.error?.issues[0]?.path).toEqual(["alerts", "errorRate"]);
  });
});

describe("telemetryOptions", () => {
  it("keeps tracing off and serves Prometheus without any environment", () => {
    const options = telemetryOptions(defaults, {});
    expect(options.traces).toEqual({ exporter: "none", sampler: "parentbased_traceidratio", sampleRatio: 1 });
    expect(options.metrics).toEqual({ prometheus: true, process: true });
    expect(options.serviceName).toBe("toolgate");
  });

  it("turns OTLP traces on from OTEL_TRACES_EXPORTER and derives the URL from OTEL_EXPORTER_OTLP_ENDPOINT", () => {
    const options = telemetryOptions(defaults, {
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318/",
      OTEL_SERVICE_NAME: "gw-1",
    });
    expect(options.traces.exporter).toBe("otlp");
    expect(options.traces.endpoint).toBe("http://127.0.0.1:4318/v1/traces");
    expect(options.serviceName).toBe("gw-1");
  });

  it("prefers the signal-specific endpoint and the environment over the config", () => {
    const config = TelemetrySchema.parse({
      traces: { exporter: "otlp", endpoint: "http://127.0.0.1:1/v1/traces" },
      metrics: { otlp: { endpoint: "http://127.0.0.1:1/v1/metrics" } },
    });
    const options = telemetryOptions(config, {
      OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:2/traces",
      OTEL_METRIC_EXPORT_INTERVAL: "5000",
    });
    expect(options.traces.endpoint).toBe("http://127.0.0.1:2/traces");
    expect(options.metrics.otlp).toEqual({
      endpoint: "http://127.0.0.1:1/v1/metrics",
      intervalMs: 5000,
      protocol: "http/protobuf",
    });
  });

  it("uses the config's endpoint when the environment names none", () => {
    const config = TelemetrySchema.parse({
      traces: { exporter: "otlp", endpoint: "http://127.0.0.1:9/v1/traces" },
    });
    expect(telemetryOptions(config, {}).traces.endpoint).toBe("http://127.0.0.1:9/v1/traces");
  });

  it("adds OTLP metrics from OTEL_METRICS_EXPORTER and leaves Prometheus on", () => {
    const options = telemetryOptions(defaults, { OTEL_METRICS_EXPORTER: "otlp,prometheus" });
    expect(options.metrics.otlp).toEqual({
      endpoint: "http://localhost:4318/v1/metrics",
      intervalMs: 60_000,
      protocol: "http/protobuf",
    });
    expect(options.metrics.prometheus).toBe(true);
    expect(telemetryOptions(defaults, { OTEL_METRICS_EXPORTER: "none" }).metrics.otlp).toBeUndefined();
  });

  it("takes the OTLP protocol per signal, gRPC with its own endpoint form, and refuses others", () => {
    const options = telemetryOptions(defaults, {
      OTEL_TRACES_EXPORTER: "otlp",
      OTEL_METRICS_EXPORTER: "otlp",
      OTEL_EXPORTER_OTLP_PROTOCOL: "grpc",
      OTEL_EXPORTER_OTLP_METRICS_PROTOCOL: "http/json",
      OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317",
    });
    expect(options.traces).toMatchObject({ protocol: "grpc", endpoint: "http://collector:4317" });
    expect(options.metrics.otlp).toMatchObject({
      protocol: "http/json",
      endpoint: "http://collector:4317/v1/metrics",
    });
    expect(
      telemetryOptions(defaults, { OTEL_TRACES_EXPORTER: "otlp", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }).traces
        .endpoint,
    ).toBe("http://localhost:4317");
    expect(() => telemetryOptions(defaults, { OTEL_EXPORTER_OTLP_PROTOCOL: "thrift" })).toThrow(
      /OTEL_EXPORTER_OTLP_PROTOCOL "thrift" is not supported; use one of http\/protobuf, http\/json, grpc/,
    );
  });

  it("reads OTEL_RESOURCE_ATTRIBUTES, percent-decoded, and refuses a malformed one", () => {
    const options = telemetryOptions(defaults, {
      OTEL_RESOURCE_ATTRIBUTES: "deployment.environment.name=prod,service.instance.id=gw-1,team=a%2Cb",
    });
    expect(options.resourceAttributes).toEqual({
      "deployment.environment.name": "prod",
      "service.instance.id": "gw-1",
      team: "a,b",
    });
    expect(telemetryOptions(defaults, { OTEL_RESOURCE_ATTRIBUTES: "service.name=edge" }).serviceName).toBe(
      "edge",
    );
    expect(() => telemetryOptions(defaults, { OTEL_RESOURCE_ATTRIBUTES: "novalue" })).toThrow(
      /OTEL_RESOURCE_ATTRIBUTES: "novalue" is not key=value/,
    );
  });

  it("reads the sampler and its ratio", () => {
    const options = telemetryOptions(defaults, {
      OTEL_TRACES_SAMPLER: "traceidratio",
      OTEL_TRACES_SAMPLER_ARG: "0.25",
    });
    expect(options.traces).toMatchObject({ sampler: "traceidratio", sampleRatio: 0.25 });
  });

  it.each([
    [{ OTEL_TRACES_EXPORTER: "jaeger" }, /OTEL_TRACES_EXPORTER "jaeger" is not supported/],
    [{ OTEL_TRACES_SAMPLER: "sometimes" }, /OTEL_TRACES_SAMPLER "sometimes"/],
    [{ OTEL_TRACES_SAMPLER_ARG: "2" }, /OTEL_TRACES_SAMPLER_ARG "2" must be a number from 0 to 1/],
    [{ OTEL_METRICS_EXPORTER: "otlp", OTEL_METRIC_EXPORT_INTERVAL: "soon" }, /OTEL_METRIC_EXPORT_INTERVAL/],
  ])("refuses %j with a ConfigInvalid error naming the variable", (env, message) => {
    const thrown = (() => {
      try {
        telemetryOptions(defaults, env);
      } catch (err) {
        return err;
      }
    })();
    expect(thrown).toMatchObject({ code: ErrorCode.ConfigInvalid, message: expect.stringMatching(message) });
  });
});

describe("TelemetrySchema URLs", () => {
  it("accepts only http and https for exporters and the webhook", () => {
    expect(TelemetrySchema.safeParse({ alertWebhook: "https://hooks.example.test/x" }).success).toBe(true);
    expect(TelemetrySchema.safeParse({ alertWebhook: "file:///etc/passwd" }).success).toBe(false);
    expect(
      TelemetrySchema.safeParse({ traces: { exporter: "otlp", endpoint: "ftp://x/v1/traces" } }).success,
    ).toBe(false);
  });
});
