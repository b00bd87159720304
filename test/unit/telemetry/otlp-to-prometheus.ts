/**
 * The second way metrics reach Prometheus: OTLP pushed to Prometheus' OTLP receiver (or a Collector),
 * which names series by its own translation. Written here from Prometheus' documentation (default
 * `UnderscoreEscapingWithSuffixes`), apart from src/telemetry/prometheus-names.ts, and applied to the OTLP
 * JSON a real exporter posts: every series name with its label names, `job` and `instance` from the
 * resource's service.name / service.instance.id.
 */

interface OtlpAttribute {
  key: string;
  value: Record<string, unknown>;
}
interface OtlpPoint {
  attributes?: OtlpAttribute[];
}
interface OtlpMetric {
  name: string;
  unit?: string;
  sum?: { isMonotonic?: boolean; dataPoints: OtlpPoint[] };
  gauge?: { dataPoints: OtlpPoint[] };
  histogram?: { dataPoints: OtlpPoint[] };
}
export interface OtlpMetricsRequest {
  resourceMetrics: Array<{
    resource?: { attributes?: OtlpAttribute[] };
    scopeMetrics: Array<{ metrics: OtlpMetric[] }>;
  }>;
}

const UNIT_WORDS: Record<string, string> = { s: "seconds", ms: "milliseconds", By: "bytes" };

const underscores = (name: string) => name.replace(/[^a-zA-Z0-9_:]/g, "_").replace(/_+/g, "_");

/** Series name → label names, as Prometheus stores what it received. */
export function seriesFromOtlp(requests: OtlpMetricsRequest[]): Map<string, Set<string>> {
  const series = new Map<string, Set<string>>();
  for (const request of requests) {
    for (const rm of request.resourceMetrics) {
      const resource = new Map((rm.resource?.attributes ?? []).map((a) => [a.key, a.value]));
      const target = [
        ...(resource.has("service.name") ? ["job"] : []),
        ...(resource.has("service.instance.id") ? ["instance"] : []),
      ];
      for (const scope of rm.scopeMetrics) {
        for (const metric of scope.metrics) {
          const unit = (metric.unit ?? "").replace(/\{[^}]*\}/g, "");
          let name = underscores(metric.name);
          const word = unit === "1" ? (metric.gauge ? "ratio" : "") : (UNIT_WORDS[unit] ?? underscores(unit));
          if (word && !name.split("_").includes(word)) name = `${name}_${word}`;
          const points =
            metric.sum?.dataPoints ?? metric.gauge?.dataPoints ?? metric.histogram?.dataPoints ?? [];
          const names = metric.histogram
            ? [`${name}_bucket`, `${name}_sum`, `${name}_count`]
            : metric.sum?.isMonotonic && !name.endsWith("_total")
              ? [`${name}_total`]
              : [name];
          for (const point of points) {
            const labels = [...target, ...(point.attributes ?? []).map((a) => underscores(a.key))];
            for (const n of names) {
              const set = series.get(n) ?? new Set<string>();
              for (const l of labels) set.add(l);
              if (n.endsWith("_bucket")) set.add("le");
              series.set(n, set);
            }
          }
        }
      }
    }
  }
  return series;
}
