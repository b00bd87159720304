/**
 * Every metric instrument of the gateway, created once from a Meter (the hot path only records). The ones
 * recorded on every call are `Hot*`: aggregated natively (aggregation.ts) when `native` is given, else
 * plain OTel instruments behind the same interface.
 */
import type { Counter, Histogram, Meter, ObservableUpDownCounter, UpDownCounter } from "@opentelemetry/api";
import {
  type HistogramOptions,
  type HotCounter,
  type HotHistogram,
  type NativeMetrics,
  otelCounter,
  otelHistogram,
} from "./aggregation.ts";
import * as N from "./names.ts";

export interface Instruments {
  serverOperationDuration: HotHistogram;
  clientOperationDuration: HotHistogram;
  serverSessionDuration: Histogram;
  clientSessionDuration: Histogram;
  calls: HotCounter;
  callErrors: Counter;
  callDuration: HotHistogram;
  requestSize: HotHistogram;
  responseSize: HotHistogram;
  /** Observed when metrics are collected (the counts live in Telemetry): no label hashing per attempt. */
  inFlight: ObservableUpDownCounter;
  queued: ObservableUpDownCounter;
  retries: Counter;
  fallbacks: Counter;
  timeouts: Counter;
  queueWait: Histogram;
  lockWait: Histogram;
  breakerTransitions: Counter;
  breakerRejections: Counter;
  upstreamRestarts: Counter;
  httpRefused: Counter;
  sessionsOpen: UpDownCounter;
  tasks: Counter;
  tasksRunning: UpDownCounter;
  taskDuration: Histogram;
}

const CALLS_DESCRIPTION = "Finished tool calls by tool, upstream and outcome.";

export function createInstruments(meter: Meter, native?: NativeMetrics): Instruments {
  // Every instrument is noted in creation order: the native metrics take their place in the SDK's output.
  const noted = <T>(name: string, make: (name: string) => T): T => {
    native?.note(name);
    return make(name);
  };
  const durationOptions = (description: string): HistogramOptions => ({
    description,
    unit: N.UNIT_SECONDS,
    advice: { explicitBucketBoundaries: N.DURATION_BUCKETS_S },
  });
  const sizeOptions = (description: string): HistogramOptions => ({
    description,
    unit: N.UNIT_BYTES,
    advice: { explicitBucketBoundaries: N.SIZE_BUCKETS_BYTES },
  });
  const seconds = (name: string, description: string) =>
    noted(name, () => meter.createHistogram(name, durationOptions(description)));
  const hot = (name: string, options: HistogramOptions): HotHistogram =>
    native ? native.histogram(name, options) : otelHistogram(meter.createHistogram(name, options));
  const counter = (name: string, description: string) =>
    noted(name, () => meter.createCounter(name, { description }));
  return {
    serverOperationDuration: hot(
      N.METRIC_MCP_SERVER_OPERATION_DURATION,
      durationOptions("Duration of MCP requests served to downstream clients."),
    ),
    clientOperationDuration: hot(
      N.METRIC_MCP_CLIENT_OPERATION_DURATION,
      durationOptions("Duration of MCP requests sent to upstreams, one per attempt."),
    ),
    serverSessionDuration: seconds(
      N.METRIC_MCP_SERVER_SESSION_DURATION,
      "Duration of downstream MCP sessions.",
    ),
    clientSessionDuration: seconds(
      N.METRIC_MCP_CLIENT_SESSION_DURATION,
      "Duration of the gateway's MCP sessions with its upstreams (from ready until the connection ends).",
    ),
    calls: native
      ? native.counter(N.METRIC_CALLS, { description: CALLS_DESCRIPTION })
      : otelCounter(meter.createCounter(N.METRIC_CALLS, { description: CALLS_DESCRIPTION })),
    callErrors: counter(
      N.METRIC_CALL_ERRORS,
      "Failed tool calls by tool, upstream, error code and error class.",
    ),
    callDuration: hot(
      N.METRIC_CALL_DURATION,
      durationOptions("Duration of tool calls through the policy pipeline."),
    ),
    requestSize: hot(N.METRIC_CALL_REQUEST_SIZE, sizeOptions("Size of tool call arguments.")),
    responseSize: hot(N.METRIC_CALL_RESPONSE_SIZE, sizeOptions("Size of tool call results.")),
    inFlight: noted(N.METRIC_CALLS_IN_FLIGHT, (name) =>
      meter.createObservableUpDownCounter(name, {
        description: "Attempts running now (holding their slots, not queued).",
      }),
    ),
    queued: noted(N.METRIC_CALLS_QUEUED, (name) =>
      meter.createObservableUpDownCounter(name, { description: "Calls waiting for a concurrency slot." }),
    ),
    retries: counter(N.METRIC_RETRIES, "Retries scheduled."),
    fallbacks: counter(N.METRIC_FALLBACKS, "Calls moved to a fallback route."),
    timeouts: counter(N.METRIC_TIMEOUTS, "Attempt and call timeouts, by limit (toolgate.scope)."),
    queueWait: seconds(N.METRIC_QUEUE_WAIT, "Time calls waited in a concurrency queue."),
    lockWait: seconds(N.METRIC_LOCK_WAIT, "Time calls waited for an exclusive lock."),
    breakerTransitions: counter(
      N.METRIC_BREAKER_TRANSITIONS,
      "Circuit breaker state changes, by breaker and new state.",
    ),
    breakerRejections: counter(
      N.METRIC_BREAKER_REJECTIONS,
      "Calls failed fast by an open or half-open circuit breaker.",
    ),
    tasks: counter(N.METRIC_TASKS, "Task lifecycle events by tool, origin (gateway or upstream) and event."),
    tasksRunning: noted(N.METRIC_TASKS_RUNNING, (name) =>
      meter.createUpDownCounter(name, {
        description: "Tasks the gateway runs itself that have not finished.",
      }),
    ),
    taskDuration: seconds(N.METRIC_TASK_DURATION, "Life of tasks the gateway runs, creation to end."),
    upstreamRestarts: counter(N.METRIC_UPSTREAM_RESTARTS, "Upstream reconnects and process restarts."),
    httpRefused: counter(
      N.METRIC_HTTP_REFUSED,
      "HTTP requests to /mcp and /ws refused before MCP took them (credentials, Origin, body, limits), by status.",
    ),
    sessionsOpen: noted(N.METRIC_SESSIONS_OPEN, (name) =>
      meter.createUpDownCounter(name, { description: "Downstream MCP sessions open now." }),
    ),
  };
}
