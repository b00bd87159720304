/**
 * The gateway's own aggregation of its hot per-call instruments (operation durations, calls, call duration,
 * payload sizes). OpenTelemetry JS has no bound instruments: every record hashes its attribute object
 * (sorted keys, JSON) to find its series. Here the telemetry facade asks once per label set for a series and
 * then records into a plain accumulator: no hashing and no allocation per call.
 *
 * The accumulators reach the readers already configured (Prometheus, OTLP, tests) inside the SDK's own
 * output: each reader's SDK producer is wrapped so its `toolgate` scope gets these metrics at the place the
 * SDK would have put them (creation order), with the same descriptors, points, start times (first record of
 * the series) and end time (the collection's) as the SDK's cumulative aggregation. A MetricProducer given
 * to a reader (`metricProducers`, which the Prometheus exporter and the periodic OTLP reader take) would not
 * do: the reader appends a producer's output as a second `toolgate` scope entry (OTLP then carries the scope
 * twice, /metrics lists the families in another order), and readers handed in already built
 * (`metricReaders`) cannot take one.
 *
 * Only cumulative temporality with the default aggregation is reproduced: when any reader asks for another
 * (e.g. OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta), setup.ts uses the OTel instruments instead.
 */
import { type Attributes, type Counter, type Histogram, type HrTime, ValueType } from "@opentelemetry/api";
import { millisToHrTime } from "@opentelemetry/core";
import {
  AggregationTemporality,
  AggregationType,
  type CollectionResult,
  DataPointType,
  type HistogramMetricData,
  type IMetricReader,
  InstrumentType,
  type MetricData,
  type MetricDescriptor,
  type ScopeMetrics,
  type SumMetricData,
} from "@opentelemetry/sdk-metrics";

/** One histogram series, bound to its attributes. */
export interface HistogramSeries {
  record(value: number): void;
}

/** One counter series, bound to its attributes. */
export interface CounterSeries {
  add(value: number): void;
}

export interface HotHistogram {
  /** The series of `attributes` (look it up once, record into it per call). */
  series(attributes: Attributes): HistogramSeries;
  /** A record with attributes made on the spot (rare paths). */
  record(value: number, attributes: Attributes): void;
}

export interface HotCounter {
  series(attributes: Attributes): CounterSeries;
  add(value: number, attributes: Attributes): void;
}

/** Plain OpenTelemetry instruments behind the same interface (the fallback; also the reference in tests). */
export function otelHistogram(histogram: Histogram): HotHistogram {
  return {
    series: (attributes) => ({ record: (value) => histogram.record(value, attributes) }),
    record: (value, attributes) => histogram.record(value, attributes),
  };
}

export function otelCounter(counter: Counter): HotCounter {
  return {
    series: (attributes) => ({ add: (value) => counter.add(value, attributes) }),
    add: (value, attributes) => counter.add(value, attributes),
  };
}

/** The SDK's default cardinality limit; series beyond it go to one overflow series, as the SDK does. */
const CARDINALITY_LIMIT = 2000;
const OVERFLOW: Attributes = Object.freeze({ "otel.metric.overflow": true });
const HOT_TYPES = [InstrumentType.COUNTER, InstrumentType.HISTOGRAM];

/** True when `reader` wants what the native aggregation produces: cumulative, default aggregation and limit. */
export function aggregatesNatively(reader: IMetricReader): boolean {
  return HOT_TYPES.every(
    (type) =>
      reader.selectAggregationTemporality(type) === AggregationTemporality.CUMULATIVE &&
      reader.selectAggregation(type).type === AggregationType.DEFAULT &&
      (reader.selectCardinalityLimit?.(type) ?? CARDINALITY_LIMIT) === CARDINALITY_LIMIT,
  );
}

/** A stable key of an attribute set (the SDK's hashAttributes): only when a series is looked up, not per call. */
function keyOf(attributes: Attributes): string {
  return JSON.stringify(
    Object.keys(attributes)
      .sort()
      .map((key) => [key, attributes[key]]),
  );
}

class HistogramPoint implements HistogramSeries {
  startTime: HrTime | undefined;
  readonly counts: number[];
  sum = 0;
  count = 0;
  min = Infinity;
  max = -Infinity;
  readonly attributes: Attributes;
  readonly boundaries: readonly number[];
  readonly live: HistogramPoint[];

  constructor(attributes: Attributes, boundaries: readonly number[], live: HistogramPoint[]) {
    this.attributes = attributes;
    this.boundaries = boundaries;
    this.live = live;
    this.counts = new Array<number>(boundaries.length + 1).fill(0);
  }

  record(value: number): void {
    if (value < 0) return; // the SDK drops them too (with a diag warning)
    if (this.startTime === undefined) {
      this.startTime = millisToHrTime(Date.now());
      this.live.push(this);
    }
    if (Number.isNaN(value)) return;
    this.count++;
    this.sum += value;
    if (value < this.min) this.min = value;
    if (value > this.max) this.max = value;
    // The first bound >= value (bounds are upper-inclusive), as the SDK's binarySearchUB.
    const bounds = this.boundaries;
    let lo = 0;
    let hi = bounds.length - 1;
    let index = bounds.length;
    while (hi >= lo) {
      const mid = (lo + hi) >>> 1;
      if ((bounds[mid] as number) < value) lo = mid + 1;
      else {
        index = mid;
        hi = mid - 1;
      }
    }
    this.counts[index] = (this.counts[index] as number) + 1;
  }
}

class CounterPoint implements CounterSeries {
  startTime: HrTime | undefined;
  value = 0;
  readonly attributes: Attributes;
  readonly live: CounterPoint[];

  constructor(attributes: Attributes, live: CounterPoint[]) {
    this.attributes = attributes;
    this.live = live;
  }

  add(value: number): void {
    if (value < 0) return; // a counter only goes up: the SDK drops these too
    if (this.startTime === undefined) {
      this.startTime = millisToHrTime(Date.now());
      this.live.push(this);
    }
    this.value += value;
  }
}

/** Series by attribute set, capped like the SDK's cardinality limit. */
class Points<P> {
  readonly live: P[] = [];
  readonly #byKey = new Map<string, P>();
  #overflow: P | undefined;
  readonly make: (attributes: Attributes, live: P[]) => P;

  constructor(make: (attributes: Attributes, live: P[]) => P) {
    this.make = make;
  }

  get(attributes: Attributes): P {
    const key = keyOf(attributes);
    let point = this.#byKey.get(key);
    if (!point) {
      if (this.#byKey.size >= CARDINALITY_LIMIT - 1) {
        this.#overflow ??= this.make(OVERFLOW, this.live);
        return this.#overflow;
      }
      point = this.make(attributes, this.live);
      this.#byKey.set(key, point);
    }
    return point;
  }
}

class NativeHistogram implements HotHistogram {
  readonly #points: Points<HistogramPoint>;
  readonly descriptor: MetricDescriptor;

  constructor(descriptor: MetricDescriptor, boundaries: readonly number[]) {
    this.descriptor = descriptor;
    this.#points = new Points((attributes, live) => new HistogramPoint(attributes, boundaries, live));
  }

  series(attributes: Attributes): HistogramSeries {
    return this.#points.get(attributes);
  }

  record(value: number, attributes: Attributes): void {
    this.#points.get(attributes).record(value);
  }

  collect(endTime: HrTime): HistogramMetricData | undefined {
    const live = this.#points.live;
    if (live.length === 0) return undefined;
    return {
      descriptor: this.descriptor,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.HISTOGRAM,
      dataPoints: live.map((p) => {
        const seen = p.count > 0;
        return {
          attributes: p.attributes,
          startTime: p.startTime as HrTime,
          endTime,
          value: {
            min: seen ? p.min : undefined,
            max: seen ? p.max : undefined,
            sum: p.sum,
            buckets: { boundaries: p.boundaries as number[], counts: p.counts.slice() },
            count: p.count,
          },
        };
      }),
    };
  }
}

class NativeCounter implements HotCounter {
  readonly #points = new Points<CounterPoint>((attributes, live) => new CounterPoint(attributes, live));

  readonly descriptor: MetricDescriptor;

  constructor(descriptor: MetricDescriptor) {
    this.descriptor = descriptor;
  }

  series(attributes: Attributes): CounterSeries {
    return this.#points.get(attributes);
  }

  add(value: number, attributes: Attributes): void {
    this.#points.get(attributes).add(value);
  }

  collect(endTime: HrTime): SumMetricData | undefined {
    const live = this.#points.live;
    if (live.length === 0) return undefined;
    return {
      descriptor: this.descriptor,
      aggregationTemporality: AggregationTemporality.CUMULATIVE,
      dataPointType: DataPointType.SUM,
      dataPoints: live.map((p) => ({
        attributes: p.attributes,
        startTime: p.startTime as HrTime,
        endTime,
        value: p.value,
      })),
      isMonotonic: true,
    };
  }
}

/** The boundaries the SDK's ExplicitBucketHistogramAggregation makes of the advice: sorted, no infinities. */
function boundariesOf(advice: readonly number[]): number[] {
  const sorted = [...advice].sort((a, b) => a - b);
  const start = sorted.lastIndexOf(-Infinity) + 1;
  const end = sorted.indexOf(Infinity);
  return sorted.slice(start, end === -1 ? undefined : end);
}

export interface HistogramOptions {
  description: string;
  unit: string;
  advice: { explicitBucketBoundaries: number[] };
}

/**
 * The native instruments of one meter scope, and the hook that adds their metrics to every reader's output.
 * `note` every instrument the scope creates (native or not), in creation order: that is the SDK's order.
 */
export class NativeMetrics {
  readonly #instruments: Array<NativeHistogram | NativeCounter> = [];
  readonly #rank = new Map<string, number>();

  readonly scope: { name: string; version: string; schemaUrl?: string };

  constructor(scope: { name: string; version: string; schemaUrl?: string }) {
    this.scope = scope;
  }

  note(name: string): void {
    if (!this.#rank.has(name)) this.#rank.set(name, this.#rank.size);
  }

  histogram(name: string, options: HistogramOptions): HotHistogram {
    const histogram = new NativeHistogram(
      this.#descriptor(name, InstrumentType.HISTOGRAM, options),
      boundariesOf(options.advice.explicitBucketBoundaries),
    );
    this.#instruments.push(histogram);
    return histogram;
  }

  counter(name: string, options: { description: string; unit?: string }): HotCounter {
    const counter = new NativeCounter(this.#descriptor(name, InstrumentType.COUNTER, options));
    this.#instruments.push(counter);
    return counter;
  }

  /** Make `reader` report these metrics too (before it is given to a MeterProvider). */
  attach(reader: IMetricReader): void {
    const setProducer = reader.setMetricProducer.bind(reader);
    reader.setMetricProducer = (sdk) =>
      setProducer({ collect: async (options) => this.#merge(await sdk.collect(options)) });
  }

  #descriptor(
    name: string,
    type: InstrumentType,
    options: { description: string; unit?: string; advice?: HistogramOptions["advice"] },
  ): MetricDescriptor {
    this.note(name);
    // The shape of the SDK's createInstrumentDescriptor.
    return {
      name,
      type,
      description: options.description,
      unit: options.unit ?? "",
      valueType: ValueType.DOUBLE,
      advice: options.advice ?? {},
    } as MetricDescriptor;
  }

  #merge(result: CollectionResult): CollectionResult {
    const { scopeMetrics } = result.resourceMetrics;
    let scope = scopeMetrics.find(
      (s) =>
        s.scope.name === this.scope.name &&
        (s.scope.version ?? "") === this.scope.version &&
        s.scope.schemaUrl === this.scope.schemaUrl,
    );
    const endTime = (scope && firstEndTime(scope)) ?? millisToHrTime(Date.now());
    const ours: MetricData[] = [];
    for (const instrument of this.#instruments) {
      const data = instrument.collect(endTime);
      if (data) ours.push(data);
    }
    if (ours.length === 0) return result;
    if (!scope) {
      scope = { scope: { ...this.scope }, metrics: [] };
      scopeMetrics.push(scope);
    }
    scope.metrics = this.#interleave(scope.metrics, ours);
    return result;
  }

  /** Both lists are in creation order: merge them by it (names created elsewhere go last). */
  #interleave(sdk: MetricData[], ours: MetricData[]): MetricData[] {
    const rank = (m: MetricData) => this.#rank.get(m.descriptor.name) ?? Number.POSITIVE_INFINITY;
    const merged: MetricData[] = [];
    let next = 0;
    for (const metric of sdk) {
      const r = rank(metric);
      while (next < ours.length && rank(ours[next] as MetricData) < r)
        merged.push(ours[next++] as MetricData);
      merged.push(metric);
    }
    while (next < ours.length) merged.push(ours[next++] as MetricData);
    return merged;
  }
}

function firstEndTime(scope: ScopeMetrics): HrTime | undefined {
  for (const metric of scope.metrics) {
    const point = metric.dataPoints[0];
    if (point) return point.endTime;
  }
  return undefined;
}
