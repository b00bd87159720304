/** In-memory exporters for telemetry tests: spans synchronously, metrics on demand. */
import type { Attributes } from "@opentelemetry/api";
import { type DataPoint, type Histogram, MetricReader } from "@opentelemetry/sdk-metrics";
import { InMemorySpanExporter, type ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { type TelemetryConfigInput, TelemetrySchema } from "../../../src/config/telemetry-schema.ts";
import { type TelemetryOptions, telemetryOptions } from "../../../src/telemetry/options.ts";
import { createTelemetry } from "../../../src/telemetry/setup.ts";
import type { Telemetry } from "../../../src/telemetry/telemetry.ts";

export class TestMetricReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }

  /** Data points of one metric (empty when it has none). */
  async points<T = number>(name: string): Promise<Array<DataPoint<T>>> {
    const { resourceMetrics } = await this.collect();
    for (const scope of resourceMetrics.scopeMetrics) {
      for (const metric of scope.metrics) {
        if (metric.descriptor.name === name) return metric.dataPoints as Array<DataPoint<T>>;
      }
    }
    return [];
  }

  /** The value of the point whose attributes include `match` (undefined when none). */
  async value<T = number>(name: string, match: Attributes = {}): Promise<T | undefined> {
    return (await this.points<T>(name)).find((p) => includes(p.attributes, match))?.value;
  }

  async histogram(name: string, match: Attributes = {}): Promise<Histogram | undefined> {
    return this.value<Histogram>(name, match);
  }
}

export function includes(attributes: Attributes, match: Attributes): boolean {
  return Object.entries(match).every(([k, v]) => attributes[k] === v);
}

export interface Harness {
  telemetry: Telemetry;
  spans: InMemorySpanExporter;
  metrics: TestMetricReader;
  span(name: string): ReadableSpan;
}

/** A telemetry with tracing into memory, an in-memory metric reader, and no process metrics. */
export function harness(
  config: TelemetryConfigInput = {},
  extra: Partial<TelemetryOptions> & { tracing?: boolean } = {},
): Harness {
  const spans = new InMemorySpanExporter();
  const metrics = new TestMetricReader();
  const parsed = TelemetrySchema.parse({ ...config, metrics: { process: false, ...config.metrics } });
  const { tracing = true, ...rest } = extra;
  const telemetry = createTelemetry({
    ...telemetryOptions(parsed, {}),
    ...(tracing && { spanExporter: spans }),
    metricReaders: [metrics],
    ...rest,
  });
  return {
    telemetry,
    spans,
    metrics,
    span(name) {
      const found = spans.getFinishedSpans().filter((s) => s.name === name);
      if (found.length !== 1) throw new Error(`expected one span "${name}", found ${found.length}`);
      return found[0] as ReadableSpan;
    },
  };
}
