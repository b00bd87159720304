/**
 * Prometheus names as the OTel → Prometheus translation makes them (Prometheus' OTLP receiver with its
 * default `UnderscoreEscapingWithSuffixes`, the Collector's prometheus exporters): dots to underscores, the
 * unit as a suffix (`s` → `_seconds`, `By` → `_bytes`, `1` on an OTLP gauge → `_ratio`, `{call}` dropped), `_total`
 * on counters. The gateway's own /metrics uses the same names, so the shipped rules and dashboard match
 * whichever way the metrics reach Prometheus. The JS Prometheus exporter adds no unit suffix, hence this.
 */
import { DataPointType, type MetricData, type ResourceMetrics } from "@opentelemetry/sdk-metrics";

const UNITS: Record<string, string> = {
  d: "days",
  h: "hours",
  min: "minutes",
  s: "seconds",
  ms: "milliseconds",
  us: "microseconds",
  ns: "nanoseconds",
  By: "bytes",
  KiBy: "kibibytes",
  MiBy: "mebibytes",
  GiBy: "gibibytes",
  KBy: "kilobytes",
  MBy: "megabytes",
  GBy: "gigabytes",
  m: "meters",
  V: "volts",
  A: "amperes",
  J: "joules",
  W: "watts",
  g: "grams",
  Cel: "celsius",
  Hz: "hertz",
  "%": "percent",
};
const PER: Record<string, string> = {
  s: "second",
  m: "minute",
  h: "hour",
  d: "day",
  w: "week",
  mo: "month",
  y: "year",
};

/** The unit words a metric's Prometheus name ends with (`seconds`, `bytes_per_second`, `ratio`), or "". */
function prometheusUnit(unit: string, gauge: boolean): string {
  const bare = unit.replace(/\{[^}]*\}/g, "").trim();
  if (bare === "1") return gauge ? "ratio" : "";
  if (!bare) return "";
  const [main = "", per] = bare.split("/", 2);
  const words = [UNITS[main] ?? main, per ? `per_${PER[per] ?? UNITS[per] ?? per}` : ""].filter(Boolean);
  return words.join("_").replace(/[^a-zA-Z0-9_]/g, "_");
}

/** The OTel name with its unit suffix (before dots become underscores and counters get `_total`). */
function withUnitSuffix(metric: Pick<MetricData, "descriptor" | "dataPointType">): string {
  const { name, unit } = metric.descriptor;
  const suffix = prometheusUnit(unit, metric.dataPointType === DataPointType.GAUGE);
  if (!suffix) return name;
  const tokens = name.split(/[._]/);
  return suffix.split("_").every((w) => tokens.includes(w)) ? name : `${name}.${suffix}`;
}

/** The same metrics under their Prometheus names, ready for the Prometheus serializer. */
export function renameForPrometheus(metrics: ResourceMetrics): ResourceMetrics {
  return {
    resource: metrics.resource,
    scopeMetrics: metrics.scopeMetrics.map((scope) => ({
      ...scope,
      metrics: scope.metrics.map(
        (metric) =>
          ({
            ...metric,
            descriptor: {
              ...metric.descriptor,
              name: withUnitSuffix(metric),
              unit: prometheusUnit(metric.descriptor.unit, metric.dataPointType === DataPointType.GAUGE),
            },
          }) as MetricData,
      ),
    })),
  };
}
