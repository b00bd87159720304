/** Every metric instrument of the gateway, created once from a Meter (the hot path only records). */
import type { Counter, Histogram, Meter, ObservableUpDownCounter, UpDownCounter } from "@opentelemetry/api";
import * as N from "./names.ts";

export interface Instruments {
  serverOperationDuration: Histogram;
  clientOperationDuration: Histogram;
  serverSessionDuration: Histogram;
  clientSessionDuration: Histogram;
  calls: Counter;
  callErrors: Counter;
  callDuration: Histogram;
  requestSize: Histogram;
  responseSize: Histogram;
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
  sessionsOpen: UpDownCounter;
  tasks: Counter;
  tasksRunning: UpDownCounter;
  taskDuration: Histogram;
}

export function createInstruments(meter: Meter): Instruments {
  const seconds = (name: string, description: string) =>
    meter.createHistogram(name, {
      description,
      unit: N.UNIT_SECONDS,
      advice: { explicitBucketBoundaries: N.DURATION_BUCKETS_S },
    });
  const bytes = (name: string, description: string) =>
    meter.createHistogram(name, {
      description,
      unit: N.UNIT_BYTES,
      advice: { explicitBucketBoundaries: N.SIZE_BUCKETS_BYTES },
    });
  return {
    serverOperationDuration: seconds(
      N.METRIC_MCP_SERVER_OPERATION_DURATION,
      "Duration of MCP requests served to downstream clients.",
    ),
    clientOperationDuration: seconds(
      N.METRIC_MCP_CLIENT_OPERATION_DURATION,
      "Duration of MCP requests sent to upstreams, one per attempt.",
    ),
    serverSessionDuration: seconds(
      N.METRIC_MCP_SERVER_SESSION_DURATION,
      "Duration of downstream MCP sessions.",
    ),
    clientSessionDuration: seconds(
      N.METRIC_MCP_CLIENT_SESSION_DURATION,
      "Duration of the gateway's MCP sessions with its upstreams (from ready until the connection ends).",
    ),
    calls: meter.createCounter(N.METRIC_CALLS, {
      description: "Finished tool calls by tool, upstream and outcome.",
    }),
    callErrors: meter.createCounter(N.METRIC_CALL_ERRORS, {
      description: "Failed tool calls by tool, upstream, error code and error class.",
    }),
    callDuration: seconds(N.METRIC_CALL_DURATION, "Duration of tool calls through the policy pipeline."),
    requestSize: bytes(N.METRIC_CALL_REQUEST_SIZE, "Size of tool call arguments."),
    responseSize: bytes(N.METRIC_CALL_RESPONSE_SIZE, "Size of tool call results."),
    inFlight: meter.createObservableUpDownCounter(N.METRIC_CALLS_IN_FLIGHT, {
      description: "Attempts running now (holding their slots, not queued).",
    }),
    queued: meter.createObservableUpDownCounter(N.METRIC_CALLS_QUEUED, {
      description: "Calls waiting for a concurrency slot.",
    }),
    retries: meter.createCounter(N.METRIC_RETRIES, { description: "Retries scheduled." }),
    fallbacks: meter.createCounter(N.METRIC_FALLBACKS, { description: "Calls moved to a fallback route." }),
    timeouts: meter.createCounter(N.METRIC_TIMEOUTS, {
      description: "Attempt and call timeouts, by limit (toolgate.scope).",
    }),
    queueWait: seconds(N.METRIC_QUEUE_WAIT, "Time calls waited in a concurrency queue."),
    lockWait: seconds(N.METRIC_LOCK_WAIT, "Time calls waited for an exclusive lock."),
    breakerTransitions: meter.createCounter(N.METRIC_BREAKER_TRANSITIONS, {
      description: "Circuit breaker state changes, by breaker and new state.",
    }),
    breakerRejections: meter.createCounter(N.METRIC_BREAKER_REJECTIONS, {
      description: "Calls failed fast by an open or half-open circuit breaker.",
    }),
    tasks: meter.createCounter(N.METRIC_TASKS, {
      description: "Task lifecycle events by tool, origin (gateway or upstream) and event.",
    }),
    tasksRunning: meter.createUpDownCounter(N.METRIC_TASKS_RUNNING, {
      description: "Tasks the gateway runs itself that have not finished.",
    }),
    taskDuration: seconds(N.METRIC_TASK_DURATION, "Life of tasks the gateway runs, creation to end."),
    upstreamRestarts: meter.createCounter(N.METRIC_UPSTREAM_RESTARTS, {
      description: "Upstream reconnects and process restarts.",
    }),
    sessionsOpen: meter.createUpDownCounter(N.METRIC_SESSIONS_OPEN, {
      description: "Downstream MCP sessions open now.",
    }),
  };
}
