/**
 * `nodejs.eventloop.delay.*`, as the runtime instrumentation names them, but measuring the delay. Node's
 * histogram records the time between two samples, so an idle loop sampled every 50 ms reads 50 ms; the
 * instrumentation passes that on (opentelemetry-js-contrib#2794), here the sampling interval is taken off, as
 * Elastic's agent does. Its own gauges are dropped by a view (`LOOP_DELAY_VIEW`).
 */

import { monitorEventLoopDelay } from "node:perf_hooks";
import type { Meter } from "@opentelemetry/api";
import { AggregationType, type ViewOptions } from "@opentelemetry/sdk-metrics";
import { METRIC_EVENTLOOP_DELAY } from "./names.ts";

/** Each sample wakes the loop: every 50 ms, not the instrumentation's 10 ms. */
const LOOP_DELAY_SAMPLE_MS = 50;

/** The runtime instrumentation's delay gauges, replaced by these. */
export const LOOP_DELAY_VIEW: ViewOptions = {
  meterName: "@opentelemetry/instrumentation-runtime-node",
  instrumentName: `${METRIC_EVENTLOOP_DELAY}.*`,
  aggregation: { type: AggregationType.DROP },
};

/** Fewer samples than this since the last collection say nothing (the instrumentation's rule too). */
const MIN_SAMPLES = 5;
const NS_PER_S = 1e9;

/** Registers the gauges; returns what stops the sampling. */
export function observeLoopDelay(meter: Meter): () => void {
  const histogram = monitorEventLoopDelay({ resolution: LOOP_DELAY_SAMPLE_MS });
  histogram.enable();
  const interval = LOOP_DELAY_SAMPLE_MS / 1e3;
  const gauge = (name: string, description: string) =>
    meter.createObservableGauge(`${METRIC_EVENTLOOP_DELAY}.${name}`, { description, unit: "s" });
  const beyond = (ns: number) => (Number.isNaN(ns) ? 0 : Math.max(0, ns / NS_PER_S - interval));
  const gauges = {
    min: gauge("min", "Event loop minimum delay."),
    max: gauge("max", "Event loop maximum delay."),
    mean: gauge("mean", "Event loop mean delay."),
    stddev: gauge("stddev", "Event loop standard deviation delay."),
    p50: gauge("p50", "Event loop 50 percentile delay."),
    p90: gauge("p90", "Event loop 90 percentile delay."),
    p99: gauge("p99", "Event loop 99 percentile delay."),
  };
  meter.addBatchObservableCallback((result) => {
    if (histogram.count < MIN_SAMPLES) return;
    result.observe(gauges.min, beyond(histogram.min));
    result.observe(gauges.max, beyond(histogram.max));
    result.observe(gauges.mean, beyond(histogram.mean));
    result.observe(gauges.stddev, Number.isNaN(histogram.stddev) ? 0 : histogram.stddev / NS_PER_S);
    result.observe(gauges.p50, beyond(histogram.percentile(50)));
    result.observe(gauges.p90, beyond(histogram.percentile(90)));
    result.observe(gauges.p99, beyond(histogram.percentile(99)));
    histogram.reset();
  }, Object.values(gauges));
  return () => histogram.disable();
}
