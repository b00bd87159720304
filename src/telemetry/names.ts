/**
 * Every span attribute, metric name and unit the gateway emits, in one place. MCP names follow the OTel
 * semantic conventions for MCP (semconv ≥ 1.39, development status; copied rather than imported from
 * `@opentelemetry/semantic-conventions/incubating`, as its README advises); everything of our own is
 * under `toolgate.*`. Prometheus sees these as the OTel → Prometheus translation names them (see
 * prometheus-names.ts): dots as underscores, the unit as a suffix (`_seconds`, `_bytes`), `_total` on
 * counters and `_bucket`/`_sum`/`_count` on histograms.
 */

/** The metric label value of a tool or prompt name the catalog does not hold (any string a client sends). */
export const UNKNOWN_TARGET = "_unknown";

// --- Attributes from the semantic conventions ---
export const ATTR_MCP_METHOD_NAME = "mcp.method.name";
export const ATTR_MCP_SESSION_ID = "mcp.session.id";
export const ATTR_MCP_PROTOCOL_VERSION = "mcp.protocol.version";
export const ATTR_MCP_RESOURCE_URI = "mcp.resource.uri";
export const ATTR_GEN_AI_TOOL_NAME = "gen_ai.tool.name";
export const ATTR_GEN_AI_PROMPT_NAME = "gen_ai.prompt.name";
export const ATTR_GEN_AI_OPERATION_NAME = "gen_ai.operation.name";
export const ATTR_JSONRPC_REQUEST_ID = "jsonrpc.request.id";
export const ATTR_ERROR_TYPE = "error.type";
export const ATTR_NETWORK_TRANSPORT = "network.transport";
export const ATTR_RPC_RESPONSE_STATUS_CODE = "rpc.response.status_code";
export const ATTR_HTTP_RESPONSE_STATUS_CODE = "http.response.status_code";
export const ATTR_SERVICE_NAME = "service.name";
export const ATTR_SERVICE_VERSION = "service.version";
export const ATTR_SERVICE_INSTANCE_ID = "service.instance.id";

export const GEN_AI_OPERATION_EXECUTE_TOOL = "execute_tool";
/** `error.type` of a tool result with `isError: true`. */
export const ERROR_TYPE_TOOL_ERROR = "tool_error";

// --- Attributes of our own ---
export const ATTR_UPSTREAM = "toolgate.upstream";
/** The public tool name (the one the client called), on metrics; spans carry it as `gen_ai.tool.name`. */
export const ATTR_TOOL = "toolgate.tool";
export const ATTR_OUTCOME = "toolgate.outcome";
export const ATTR_ERROR_CODE = "toolgate.error.code";
export const ATTR_ERROR_CLASS = "toolgate.error.class";
/** 1 for the first attempt, 2 for the first retry, … */
export const ATTR_ATTEMPT = "toolgate.attempt";
export const ATTR_RETRY_DELAY_MS = "toolgate.retry.delay_ms";
export const ATTR_BREAKER = "toolgate.breaker";
export const ATTR_BREAKER_STATE = "toolgate.breaker.state";
export const ATTR_FALLBACK_TO = "toolgate.fallback.to";
/** Which limit a timeout or a queue belongs to: `attempt`/`call`, or `tool`/`upstream`. */
export const ATTR_SCOPE = "toolgate.scope";
export const ATTR_LOCK_KEY = "toolgate.lock.key";
export const ATTR_ALERT_RULE = "toolgate.alert.rule";
/** Who runs a task: `gateway` (tool policy `task`) or `upstream` (forwarded). */
export const ATTR_TASK_ORIGIN = "toolgate.task.origin";
/** `created`, `completed`, `failed` or `cancelled`. */
export const ATTR_TASK_EVENT = "toolgate.task.event";

// --- Span names of our own (MCP spans are named `{mcp.method.name} {target}`) ---
export const SPAN_QUEUE_WAIT = "toolgate.queue.wait";
export const SPAN_LOCK_WAIT = "toolgate.lock.wait";
export const SPAN_ATTEMPT = "toolgate.attempt";
export const EVENT_QUEUE_REJECTED = "toolgate.queue.rejected";
export const EVENT_BREAKER_REJECTED = "toolgate.breaker.rejected";
export const EVENT_BREAKER_STATE = "toolgate.breaker.state_change";
export const EVENT_FALLBACK = "toolgate.fallback";
export const EVENT_RETRY = "toolgate.retry";
export const EVENT_TIMEOUT = "toolgate.timeout";

// --- Metrics from the semantic conventions (histograms, seconds) ---
export const METRIC_MCP_SERVER_OPERATION_DURATION = "mcp.server.operation.duration";
export const METRIC_MCP_CLIENT_OPERATION_DURATION = "mcp.client.operation.duration";
export const METRIC_MCP_SERVER_SESSION_DURATION = "mcp.server.session.duration";
export const METRIC_MCP_CLIENT_SESSION_DURATION = "mcp.client.session.duration";
/** Prefix of the event-loop delay gauges (`.min`, `.max`, `.mean`, `.stddev`, `.p50`, `.p90`, `.p99`; seconds). */
export const METRIC_EVENTLOOP_DELAY = "nodejs.eventloop.delay";

// --- Metrics of our own ---
export const METRIC_CALLS = "toolgate.calls";
export const METRIC_CALL_ERRORS = "toolgate.call.errors";
export const METRIC_CALL_DURATION = "toolgate.call.duration";
export const METRIC_CALL_REQUEST_SIZE = "toolgate.call.request.size";
export const METRIC_CALL_RESPONSE_SIZE = "toolgate.call.response.size";
export const METRIC_CALLS_IN_FLIGHT = "toolgate.calls.in_flight";
export const METRIC_CALLS_QUEUED = "toolgate.calls.queued";
export const METRIC_RETRIES = "toolgate.retries";
export const METRIC_FALLBACKS = "toolgate.fallbacks";
export const METRIC_TIMEOUTS = "toolgate.timeouts";
export const METRIC_QUEUE_WAIT = "toolgate.queue.wait.duration";
export const METRIC_LOCK_WAIT = "toolgate.lock.wait.duration";
/** 0 closed, 1 half-open, 2 open (see BREAKER_STATE_VALUE). */
export const METRIC_BREAKER_STATE = "toolgate.breaker.state";
export const METRIC_BREAKER_TRANSITIONS = "toolgate.breaker.transitions";
export const METRIC_BREAKER_REJECTIONS = "toolgate.breaker.rejections";
/** 1 when the upstream takes calls (state `ready`), else 0. */
export const METRIC_UPSTREAM_UP = "toolgate.upstream.up";
/** Replicas sharing a store (cluster.redis): 1 while the store answers (shared mode), 0 in local fallback. */
export const METRIC_CLUSTER_STORE_UP = "toolgate.cluster.store.up";
export const METRIC_CLUSTER_STORE_LATENCY = "toolgate.cluster.store.latency";
export const METRIC_CLUSTER_LEASES_HELD = "toolgate.cluster.leases.held";
/** Cumulative: caps fallen back to local limits, locks refused or run locally, leases lost, by `toolgate.cluster.event`. */
export const METRIC_CLUSTER_EVENTS = "toolgate.cluster.events";
export const ATTR_CLUSTER_EVENT = "toolgate.cluster.event";
/** The replica (`service.instance.id` of the resource when set by the operator). */
export const ATTR_INSTANCE = "toolgate.instance";
export const METRIC_UPSTREAM_RESTARTS = "toolgate.upstream.restarts";
/**
 * HTTP requests to `/mcp` and `/ws` answered with a 4xx or 5xx before MCP took them: credentials, Origin/Host,
 * body type and size, unknown sessions, limits, shutting down. By `http.response.status_code`.
 */
export const METRIC_HTTP_REFUSED = "toolgate.http.refused";
/** The statuses refusals take, exported at zero from the start so increase() sees the first one. */
export const HTTP_REFUSAL_STATUSES = [400, 401, 403, 404, 405, 406, 413, 415, 500, 503] as const;
export const METRIC_SESSIONS_OPEN = "toolgate.sessions.open";
export const METRIC_ALERTS_FIRING = "toolgate.alerts.firing";
export const METRIC_TASKS = "toolgate.tasks";
export const METRIC_TASKS_RUNNING = "toolgate.tasks.running";
export const METRIC_TASK_DURATION = "toolgate.task.duration";
/** Always 1, labelled with the version: marks a toolgate process (rules join process metrics on it). */
export const METRIC_BUILD_INFO = "toolgate.build.info";
export const ATTR_VERSION = "toolgate.version";

export const BREAKER_STATE_VALUE = { closed: 0, halfOpen: 1, open: 2 } as const;

export const UNIT_SECONDS = "s";
export const UNIT_BYTES = "By";

/** Bucket bounds of every duration histogram, in seconds. */
export const DURATION_BUCKETS_S = [
  0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 30, 60, 120, 300,
];
/** Bucket bounds of payload size histograms, in bytes (256 B … 16 MiB). */
export const SIZE_BUCKETS_BYTES = [
  256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304, 16_777_216,
];

/** Instrumentation scope of everything the gateway records. */
export const SCOPE_NAME = "toolgate";
