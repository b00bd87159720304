/**
 * The facade the gateway calls: a SERVER span per downstream request, a CLIENT span per upstream attempt,
 * policy events turned into child spans and metrics, and the per-tool rolling stats of the status page.
 * When tracing is off no span is created, but the client's trace context still passes through to the
 * upstreams. Created by `createTelemetry()` (setup.ts).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type Attributes,
  type Context,
  context,
  type Meter,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  SpanStatusCode,
  type Tracer,
  trace,
} from "@opentelemetry/api";
import { type ErrorClass, ErrorCode, GatewayError, toGatewayError, toWire } from "../errors.ts";
import type { PolicyEvent } from "../policies/events.ts";
import type { CounterSeries, HistogramSeries, HotHistogram, NativeMetrics } from "./aggregation.ts";
import { ALERT_RULES, type AlertManager } from "./alerts.ts";
import type { History } from "./history.ts";
import { createInstruments, type Instruments } from "./instruments.ts";
import * as N from "./names.ts";
import type { CallOutcome, RollingStats } from "./stats.ts";
import { type HeadersLike, injectMeta, remoteParent } from "./trace-context.ts";
import {
  type BreakerState,
  type BreakerView,
  type GatewayView,
  isUp,
  type ToolView,
  type UpstreamView,
} from "./view.ts";

/** What the catalog holds after a rebuild: its names bound every label value the gateway exports. */
export interface CatalogSnapshot {
  tools: Array<Pick<ToolView, "name" | "upstream">>;
  prompts: string[];
  upstreams: string[];
  breakers: Array<Pick<BreakerView, "id" | "state">>;
}

/** `network.transport`: `pipe` for stdio, `tcp` for HTTP, SSE and WebSocket. */
export type NetworkTransport = "pipe" | "tcp";

export interface ServerSpanInfo {
  method: string;
  /** Tool or prompt name, or resource URI. */
  target?: string;
  sessionId?: string;
  protocolVersion?: string;
  requestId?: string | number;
  transport: NetworkTransport;
  /** The request's `params._meta`: its traceparent/tracestate win over the headers'. */
  meta?: Record<string, unknown>;
  /** HTTP request headers (traceparent/tracestate), when the request came over HTTP. */
  headers?: HeadersLike;
}

export interface ClientSpanInfo {
  method: string;
  /** The upstream's own name of the tool (or prompt, or resource URI). */
  target: string;
  upstream: string;
  transport: NetworkTransport;
  /** 1-based attempt number. */
  attempt: number;
}

export interface CallRecordInput {
  /** Public tool name. */
  tool: string;
  upstream: string;
  outcome: CallOutcome;
  errorCode?: ErrorCode;
  errorClass?: ErrorClass;
  durationMs: number;
  requestBytes?: number;
  responseBytes?: number;
}

export interface ClusterView {
  instance: string;
  storeUp: boolean;
  latencyMs: number | undefined;
  leasesHeld: number;
  events: Record<string, number>;
}

export interface TelemetryParts {
  tracer: Tracer;
  /** False: no spans are created (trace context still passes through). */
  tracing: boolean;
  meter: Meter;
  /** The per-call metrics' own aggregation, when the readers allow it (else OTel instruments). */
  native?: NativeMetrics;
  stats: RollingStats;
  /** The status page's last hour. */
  history: History;
  alerts: AlertManager;
  metricsHandler: (req: IncomingMessage, res: ServerResponse) => void;
  /** Prometheus text exposition, `undefined` when Prometheus is off. */
  scrape: () => Promise<string | undefined>;
  shutdown: () => Promise<void>;
}

const TOOLS_CALL = "tools/call";
/** The metric label value of a method that is not an MCP method (semconv's `_OTHER`). */
const OTHER_METHOD = "_OTHER";
const MCP_METHODS = new Set([
  "initialize",
  "ping",
  "tools/list",
  "tools/call",
  "prompts/list",
  "prompts/get",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "completion/complete",
  "logging/setLevel",
  "sampling/createMessage",
  "elicitation/create",
  "roots/list",
  "tasks/get",
  "tasks/result",
  "tasks/list",
  "tasks/cancel",
  "server/discover",
  "subscriptions/listen",
]);
/** Errors a full or slow queue produces: their series exist from the start, for rate() and the alert. */
const QUEUE_ERRORS = [ErrorCode.QueueFull, ErrorCode.QueueTimeout];
const OUTCOMES: CallOutcome[] = ["ok", "tool_error", "error"];
/** What `clientSpan` hands the upstream when there is no trace context to carry (never mutated). */
const NO_TRACE_META: Record<string, string> = Object.freeze({}) as Record<string, string>;
/** Series caches hold at most this many entries (a protocol version header is the client's word). */
const MAX_SERIES = 1_000;

/** The duration series of one operation, per outcome, looked up once (recording into them costs no lookup). */
interface OperationSeries {
  histogram: HotHistogram;
  /** The attributes of a successful operation (the others add `error.type`). */
  attributes: Attributes;
  ok: HistogramSeries;
  toolError: HistogramSeries;
  /** By `error.type` (a JSON-RPC error code). */
  errors: Map<string, HistogramSeries>;
}

/** Attempts running and calls queued of one tool and upstream, observed at collection time. */
interface Load {
  tool: string;
  upstream: string;
  labels: Attributes;
  inFlight: number;
  queued: number;
}

/** The series of one tool's call metrics, made once per tool and upstream. */
interface CallSeries {
  byOutcome: Record<CallOutcome, { labels: Attributes; calls: CounterSeries; duration: HistogramSeries }>;
  /** Duration series of failed calls, by outcome and error class. */
  byErrorClass: Map<string, HistogramSeries>;
  /** callErrors labels, by code and class. */
  errors: Map<string, Attributes>;
  /** Tool and upstream only. */
  sizes: Attributes;
  requestSize: HistogramSeries;
  responseSize: HistogramSeries;
}

export class Telemetry {
  readonly stats: RollingStats;
  readonly history: History;
  readonly alerts: AlertManager;
  readonly #parts: TelemetryParts;
  readonly #tracer: Tracer;
  readonly #tracing: boolean;
  readonly #m: Instruments;
  /** The attempt span running under each call's span: the parent of its waits and its CLIENT span. */
  readonly #attempts = new WeakMap<Span, Span>();
  readonly #breakers = new Map<string, BreakerState>();
  readonly #upstreams = new Map<string, { up: boolean; restarts: number; readySince?: number }>();
  /** Public tool and prompt names of the catalog. */
  #knownTools = new Set<string>();
  #knownPrompts = new Set<string>();
  /**
   * Attempts running and calls queued per tool and upstream, observed by the metric reader when it
   * collects: counting them with up-down counters hashed their labels twice per attempt.
   */
  readonly #load = new Map<string, Map<string, Load>>();
  #lastLoad: Load | undefined;
  /** Series already created at zero, so a catalog rebuild does not add them again. */
  readonly #seeded = new Set<string>();
  /** Metric attributes of SERVER and CLIENT operations, by their label values (cleared on catalog change). */
  readonly #serverSeries = new SeriesTable<OperationSeries>();
  readonly #clientSeries = new SeriesTable<OperationSeries>();
  /** Label objects of finished calls, by tool and upstream. */
  readonly #callSeries = new SeriesTable<CallSeries>();

  constructor(parts: TelemetryParts) {
    this.#parts = parts;
    this.#tracer = parts.tracer;
    this.#tracing = parts.tracing;
    this.stats = parts.stats;
    this.history = parts.history;
    this.history.start();
    this.alerts = parts.alerts;
    this.#m = createInstruments(parts.meter, parts.native);
    this.#observeGauges(parts.meter);
    for (const status of N.HTTP_REFUSAL_STATUSES) {
      this.#m.httpRefused.add(0, { [N.ATTR_HTTP_RESPONSE_STATUS_CODE]: status });
    }
  }

  /** The SERVER span of one downstream request; `fn` runs in its context. */
  serverSpan<T>(info: ServerSpanInfo, fn: () => Promise<T>): Promise<T> {
    const series = this.#serverSeriesOf(info);
    const remote = remoteParent(info.meta, info.headers);
    // Without tracing, `fn` runs in the current context unless the request carries a trace to pass on.
    if (!this.#tracing) return this.#measure(undefined, remote, series, fn, NO_TRACE_META);
    const parent = remote ?? context.active();
    const attributes = this.#serverAttributes(info);
    const spanAttributes: Attributes = { ...attributes };
    if (info.sessionId) spanAttributes[N.ATTR_MCP_SESSION_ID] = info.sessionId;
    if (info.requestId !== undefined) spanAttributes[N.ATTR_JSONRPC_REQUEST_ID] = String(info.requestId);
    const span = this.#tracer.startSpan(
      spanName(info.method, info.target),
      { kind: SpanKind.SERVER, attributes: spanAttributes },
      parent,
    );
    const ctx = trace.setSpan(parent, span);
    return this.#measure(span, ctx, series, fn, NO_TRACE_META);
  }

  #serverAttributes(info: ServerSpanInfo): Attributes {
    const attributes: Attributes = {
      [N.ATTR_MCP_METHOD_NAME]: info.method,
      [N.ATTR_NETWORK_TRANSPORT]: info.transport,
    };
    if (info.protocolVersion) attributes[N.ATTR_MCP_PROTOCOL_VERSION] = info.protocolVersion;
    if (info.target !== undefined) attributes[targetAttribute(info.method)] = info.target;
    if (info.method === TOOLS_CALL)
      attributes[N.ATTR_GEN_AI_OPERATION_NAME] = N.GEN_AI_OPERATION_EXECUTE_TOOL;
    return attributes;
  }

  /** The metric series of a SERVER operation: bounded label values, looked up rather than rebuilt per call. */
  #serverSeriesOf(info: ServerSpanInfo): OperationSeries {
    const { method, target } = info;
    // Resource URIs are never metric labels; other targets are the catalog's names or `_unknown`.
    const labelTarget =
      target === undefined || method.startsWith("resources/")
        ? undefined
        : method.startsWith("prompts/")
          ? this.#knownPrompts.has(target)
            ? target
            : N.UNKNOWN_TARGET
          : this.#knownTools.has(target)
            ? target
            : N.UNKNOWN_TARGET;
    const version = info.protocolVersion ?? "";
    let series = this.#serverSeries.get(method, labelTarget ?? "", info.transport, version);
    if (!series) {
      series = newSeries(
        this.#m.serverOperationDuration,
        this.#bounded(method, this.#serverAttributes(info)),
      );
      this.#serverSeries.set(method, labelTarget ?? "", info.transport, version, series);
    }
    return series;
  }

  /** The CLIENT span of one upstream attempt; `fn` gets the `_meta` entries that carry the trace upstream. */
  clientSpan<T>(info: ClientSpanInfo, fn: (meta: Record<string, string>) => Promise<T>): Promise<T> {
    const series = this.#clientSeriesOf(info);
    let ctx = context.active();
    if (!this.#tracing) {
      // No span and no trace context to pass on (the usual call): nothing to inject.
      const meta = ctx === ROOT_CONTEXT ? NO_TRACE_META : injectMeta(ctx);
      return this.#measure(undefined, undefined, series, fn, meta);
    }
    // A call the sampler left out: every sampler toolgate configures leaves out its children too (they
    // follow the parent, or the ratio of the same trace id), so no span; its context still goes upstream.
    if (trace.getSpan(ctx)?.isRecording() === false) {
      return this.#measure(undefined, undefined, series, fn, injectMeta(ctx));
    }
    const attempt = this.#attemptSpan(ctx);
    if (attempt) ctx = trace.setSpan(ctx, attempt);
    const span = this.#tracer.startSpan(
      spanName(info.method, info.target),
      {
        kind: SpanKind.CLIENT,
        attributes: { ...this.#clientAttributes(info), [N.ATTR_ATTEMPT]: info.attempt },
      },
      ctx,
    );
    ctx = trace.setSpan(ctx, span);
    const meta = injectMeta(ctx);
    return this.#measure(span, ctx, series, fn, meta);
  }

  #clientAttributes(info: ClientSpanInfo): Attributes {
    const attributes: Attributes = {
      [N.ATTR_MCP_METHOD_NAME]: info.method,
      [N.ATTR_NETWORK_TRANSPORT]: info.transport,
      [N.ATTR_UPSTREAM]: info.upstream,
    };
    if (info.target) attributes[targetAttribute(info.method)] = info.target;
    if (info.method === TOOLS_CALL)
      attributes[N.ATTR_GEN_AI_OPERATION_NAME] = N.GEN_AI_OPERATION_EXECUTE_TOOL;
    return attributes;
  }

  #clientSeriesOf(info: ClientSpanInfo): OperationSeries {
    // Resource URIs come from clients: spans only, never a metric label.
    const target = info.method.startsWith("resources/") ? "" : info.target;
    let series = this.#clientSeries.get(info.method, target, info.transport, info.upstream);
    if (!series) {
      const { [N.ATTR_MCP_RESOURCE_URI]: _, ...attributes } = this.#clientAttributes(info);
      series = newSeries(this.#m.clientOperationDuration, attributes);
      this.#clientSeries.set(info.method, target, info.transport, info.upstream, series);
    }
    return series;
  }

  /** An upstream request made without a span (catalog discovery: `tools/list`, … per page). */
  clientOperation(
    info: { method: string; upstream: string; transport: NetworkTransport },
    durationMs: number,
    error?: unknown,
  ): void {
    this.#m.clientOperationDuration.record(durationMs / 1000, {
      [N.ATTR_MCP_METHOD_NAME]: info.method,
      [N.ATTR_NETWORK_TRANSPORT]: info.transport,
      [N.ATTR_UPSTREAM]: info.upstream,
      ...(error !== undefined && { [N.ATTR_ERROR_TYPE]: String(toWire(error).code) }),
    });
  }

  /** Consume one event of the policy pipeline: `hub.on(telemetry.onPolicyEvent)` (bound, so it passes as is). */
  readonly onPolicyEvent = (event: PolicyEvent): void => {
    if (event.type === "breakerStateChange") {
      this.#breakers.set(event.breaker, event.to);
      this.#m.breakerTransitions.add(1, {
        [N.ATTR_BREAKER]: event.breaker,
        [N.ATTR_BREAKER_STATE]: event.to,
      });
      this.#spanEvent(N.EVENT_BREAKER_STATE, {
        [N.ATTR_BREAKER]: event.breaker,
        [N.ATTR_BREAKER_STATE]: event.to,
      });
      return;
    }
    // Every attempt has these two: they allocate nothing unless tracing.
    if (event.type === "attemptStart") {
      this.#running(event, 1);
      this.#startAttempt(event, event.attempt);
      return;
    }
    if (event.type === "attemptEnd") {
      this.#running(event, -1);
      this.#endAttempt(event.outcome, event.errorCode);
      return;
    }
    // One label object per event, shared by its metrics (the SDK keeps it: never mutate it).
    const labels: Attributes = { [N.ATTR_TOOL]: event.tool, [N.ATTR_UPSTREAM]: event.upstream };
    switch (event.type) {
      case "queued":
        this.#running(event, -1);
        this.#waiting(event, 1);
        return;
      case "dequeued":
        this.#waiting(event, -1);
        this.#running(event, 1);
        this.#m.queueWait.record(event.waitMs / 1000, labels);
        this.#waitSpan(N.SPAN_QUEUE_WAIT, event.waitMs, { [N.ATTR_SCOPE]: event.bulkhead });
        return;
      case "rejected":
        // A full queue rejects at once; the other rejections leave the queue.
        if (event.code === "QueueFull") {
          this.#spanEvent(N.EVENT_QUEUE_REJECTED, {
            [N.ATTR_SCOPE]: event.bulkhead,
            [N.ATTR_ERROR_CODE]: event.code,
          });
          return;
        }
        this.#waiting(event, -1);
        this.#running(event, 1);
        this.#m.queueWait.record(event.waitMs / 1000, labels);
        this.#waitSpan(N.SPAN_QUEUE_WAIT, event.waitMs, { [N.ATTR_SCOPE]: event.bulkhead }, event.code);
        return;
      case "lockAcquired":
        this.#m.lockWait.record(event.waitMs / 1000, labels);
        if (event.waitMs > 0)
          this.#waitSpan(N.SPAN_LOCK_WAIT, event.waitMs, { [N.ATTR_LOCK_KEY]: event.lock });
        return;
      case "lockRejected":
        this.#m.lockWait.record(event.waitMs / 1000, labels);
        this.#waitSpan(N.SPAN_LOCK_WAIT, event.waitMs, { [N.ATTR_LOCK_KEY]: event.lock }, event.code);
        return;
      case "retryScheduled":
        this.#m.retries.add(1, labels);
        this.#spanEvent(N.EVENT_RETRY, {
          [N.ATTR_ATTEMPT]: event.attempt,
          [N.ATTR_RETRY_DELAY_MS]: event.delayMs,
          [N.ATTR_ERROR_CODE]: event.errorCode,
        });
        return;
      case "timeout":
        this.#m.timeouts.add(1, { ...labels, [N.ATTR_SCOPE]: event.limit });
        this.#spanEvent(N.EVENT_TIMEOUT, { [N.ATTR_SCOPE]: event.limit, [N.ATTR_ATTEMPT]: event.attempt });
        return;
      case "breakerRejected":
        this.#m.breakerRejections.add(1, { ...labels, [N.ATTR_BREAKER]: event.breaker });
        this.#spanEvent(N.EVENT_BREAKER_REJECTED, {
          [N.ATTR_BREAKER]: event.breaker,
          [N.ATTR_BREAKER_STATE]: event.state,
        });
        return;
      case "fallback":
        this.#m.fallbacks.add(1, { ...labels, [N.ATTR_FALLBACK_TO]: event.to });
        this.#spanEvent(N.EVENT_FALLBACK, {
          [N.ATTR_FALLBACK_TO]: event.to,
          [N.ATTR_ERROR_CODE]: event.reason,
        });
        return;
      case "lockWait":
      case "lockReleased":
        return;
    }
  };

  /** One finished tool call, as the router reports it. */
  recordCall(call: CallRecordInput): void {
    const series = this.#callSeriesOf(call.tool, call.upstream);
    const outcome = series.byOutcome[call.outcome];
    outcome.calls.add(1);
    (call.errorClass
      ? this.#errorClassSeries(series, call.outcome, call.errorClass)
      : outcome.duration
    ).record(call.durationMs / 1000);
    if (call.outcome === "error") {
      const code = call.errorCode ?? "Internal";
      const errorClass = call.errorClass ?? "permanent";
      const key = `${code}\u0000${errorClass}`;
      let errorLabels = series.errors.get(key);
      if (!errorLabels) {
        errorLabels = Object.freeze({
          ...series.sizes,
          [N.ATTR_ERROR_CODE]: code,
          [N.ATTR_ERROR_CLASS]: errorClass,
        });
        series.errors.set(key, errorLabels);
      }
      this.#m.callErrors.add(1, errorLabels);
    }
    if (call.requestBytes !== undefined) series.requestSize.record(call.requestBytes);
    if (call.responseBytes !== undefined) series.responseSize.record(call.responseBytes);
    this.stats.record(call.tool, call.upstream, call.outcome, call.durationMs);
    this.history.record(call.tool, call.outcome, call.durationMs);
  }

  #callSeriesOf(tool: string, upstream: string): CallSeries {
    let series = this.#callSeries.get(tool, upstream, "", "");
    if (!series) {
      const sizes = Object.freeze({ [N.ATTR_TOOL]: tool, [N.ATTR_UPSTREAM]: upstream });
      const byOutcome = {} as CallSeries["byOutcome"];
      for (const outcome of OUTCOMES) {
        const labels = Object.freeze({ ...sizes, [N.ATTR_OUTCOME]: outcome });
        byOutcome[outcome] = {
          labels,
          calls: this.#m.calls.series(labels),
          duration: this.#m.callDuration.series(labels),
        };
      }
      series = {
        byOutcome,
        byErrorClass: new Map(),
        errors: new Map(),
        sizes,
        requestSize: this.#m.requestSize.series(sizes),
        responseSize: this.#m.responseSize.series(sizes),
      };
      this.#callSeries.set(tool, upstream, "", "", series);
    }
    return series;
  }

  #errorClassSeries(series: CallSeries, outcome: CallOutcome, errorClass: string): HistogramSeries {
    const key = `${outcome}\u0000${errorClass}`;
    let withClass = series.byErrorClass.get(key);
    if (!withClass) {
      const labels = { ...series.byOutcome[outcome].labels, [N.ATTR_ERROR_CLASS]: errorClass };
      withClass = this.#m.callDuration.series(Object.freeze(labels));
      series.byErrorClass.set(key, withClass);
    }
    return withClass;
  }

  /**
   * The catalog was rebuilt: its tool and prompt names become the only ones metrics carry, and each tool's,
   * upstream's and breaker's series start at zero now, so rate()/increase() see their first event.
   */
  catalogChanged(catalog: CatalogSnapshot): void {
    this.history.retain(new Set(catalog.tools.map((t) => t.name)));
    this.#knownTools = new Set(catalog.tools.map((t) => t.name));
    this.#knownPrompts = new Set(catalog.prompts);
    // Their bounded labels depend on the names known.
    this.#serverSeries.clear();
    for (const { name: tool, upstream } of catalog.tools) {
      if (!this.#seed(`tool:${tool}\u0000${upstream}`)) continue;
      const labels: Attributes = { [N.ATTR_TOOL]: tool, [N.ATTR_UPSTREAM]: upstream };
      for (const outcome of OUTCOMES) this.#m.calls.add(0, { ...labels, [N.ATTR_OUTCOME]: outcome });
      for (const code of QUEUE_ERRORS) {
        this.#m.callErrors.add(0, {
          ...labels,
          [N.ATTR_ERROR_CODE]: code,
          [N.ATTR_ERROR_CLASS]: new GatewayError(code, "").errorClass,
        });
      }
      this.#loadOf(tool, upstream);
      this.#m.retries.add(0, labels);
      for (const scope of ["attempt", "call"]) this.#m.timeouts.add(0, { ...labels, [N.ATTR_SCOPE]: scope });
    }
    for (const upstream of catalog.upstreams) {
      if (this.#seed(`upstream:${upstream}`))
        this.#m.upstreamRestarts.add(0, { [N.ATTR_UPSTREAM]: upstream });
    }
    for (const { id, state } of catalog.breakers) {
      if (!this.#breakers.has(id)) this.#breakers.set(id, state);
      if (!this.#seed(`breaker:${id}`)) continue;
      for (const to of Object.keys(N.BREAKER_STATE_VALUE)) {
        this.#m.breakerTransitions.add(0, { [N.ATTR_BREAKER]: id, [N.ATTR_BREAKER_STATE]: to });
      }
    }
  }

  /**
   * A task event. Forwarded tasks are counted when created and cancelled through the gateway; how they end
   * is the upstream's business (clients poll it), so only tasks the gateway runs count completed/failed.
   */
  recordTask(event: {
    type: "created" | "completed" | "failed" | "cancelled";
    origin: "gateway" | "upstream";
    tool: string;
    durationMs?: number;
  }): void {
    this.#m.tasks.add(1, {
      [N.ATTR_TOOL]: event.tool,
      [N.ATTR_TASK_ORIGIN]: event.origin,
      [N.ATTR_TASK_EVENT]: event.type,
    });
    if (event.origin === "gateway") {
      this.#m.tasksRunning.add(event.type === "created" ? 1 : -1, { [N.ATTR_TOOL]: event.tool });
    }
    if (event.durationMs !== undefined) {
      this.#m.taskDuration.record(event.durationMs / 1000, {
        [N.ATTR_TOOL]: event.tool,
        [N.ATTR_TASK_EVENT]: event.type,
      });
    }
  }

  /** An upstream's status changed (subscribe this to the upstreams' `state` events). */
  upstreamStatus(status: UpstreamView): void {
    const previous = this.#upstreams.get(status.name);
    const added = status.restarts - (previous?.restarts ?? 0);
    if (added > 0) this.#m.upstreamRestarts.add(added, { [N.ATTR_UPSTREAM]: status.name });
    const up = isUp(status);
    let readySince = previous?.readySince;
    if (up && readySince === undefined) readySince = performance.now();
    if (!up && readySince !== undefined) {
      this.#m.clientSessionDuration.record((performance.now() - readySince) / 1000, {
        [N.ATTR_UPSTREAM]: status.name,
        [N.ATTR_NETWORK_TRANSPORT]: status.transport === "stdio" ? "pipe" : "tcp",
        ...(status.state === "down" && { [N.ATTR_ERROR_TYPE]: "connection_lost" }),
      });
      readySince = undefined;
    }
    this.#upstreams.set(status.name, {
      up,
      restarts: Math.max(status.restarts, previous?.restarts ?? 0),
      ...(readySince !== undefined && { readySince }),
    });
  }

  /** Forget an upstream that left the config. */
  upstreamRemoved(name: string): void {
    this.#upstreams.delete(name);
  }

  sessionOpened(transport: NetworkTransport): void {
    this.#m.sessionsOpen.add(1, { [N.ATTR_NETWORK_TRANSPORT]: transport });
  }

  sessionClosed(transport: NetworkTransport, durationMs: number): void {
    this.#m.sessionsOpen.add(-1, { [N.ATTR_NETWORK_TRANSPORT]: transport });
    this.#m.serverSessionDuration.record(durationMs / 1000, { [N.ATTR_NETWORK_TRANSPORT]: transport });
  }

  /** An HTTP request refused before MCP took it (see METRIC_HTTP_REFUSED). */
  httpRefused(status: number): void {
    this.#m.httpRefused.add(1, { [N.ATTR_HTTP_RESPONSE_STATUS_CODE]: status });
  }

  /** Start evaluating alert rules against the running gateway. */
  startAlerts(view: GatewayView): void {
    this.alerts.start(view);
  }

  /** Prometheus text for `GET /metrics` (node:http objects, e.g. hono's `c.env.incoming/outgoing`). */
  metricsHandler(req: IncomingMessage, res: ServerResponse): void {
    this.#parts.metricsHandler(req, res);
  }

  /** The Prometheus text exposition (for a Web-standard `/metrics` route); `undefined` when it is off. */
  scrape(): Promise<string | undefined> {
    return this.#parts.scrape();
  }

  /** Flush exporters and stop every timer. */
  shutdown(): Promise<void> {
    this.alerts.stop();
    this.history.stop();
    return this.#parts.shutdown();
  }

  /** Runs `fn(meta)` in `ctx` (else in the current context) and records its duration (and ends `span`). */
  async #measure<T>(
    span: Span | undefined,
    ctx: Context | undefined,
    series: OperationSeries,
    fn: (meta: Record<string, string>) => Promise<T>,
    meta: Record<string, string>,
  ): Promise<T> {
    const started = performance.now();
    let outcome = series.ok;
    try {
      const result = await (ctx === undefined ? fn(meta) : context.with(ctx, fn, undefined, meta));
      const toolError = toolErrorOf(result);
      if (toolError) {
        outcome = series.toolError;
        if (span) {
          span.setAttribute(N.ATTR_ERROR_TYPE, N.ERROR_TYPE_TOOL_ERROR);
          if (toolError.code) span.setAttribute(N.ATTR_ERROR_CODE, toolError.code);
          span.setStatus({ code: SpanStatusCode.ERROR, message: toolError.message });
        }
      }
      return result;
    } catch (err) {
      const wire = toWire(err);
      const code = String(wire.code);
      outcome = errorSeries(series, code);
      if (span) {
        span.setAttributes({
          [N.ATTR_ERROR_TYPE]: code,
          [N.ATTR_RPC_RESPONSE_STATUS_CODE]: code,
          [N.ATTR_ERROR_CODE]: toGatewayError(err).code,
        });
        span.setStatus({ code: SpanStatusCode.ERROR, message: wire.message });
      }
      throw err;
    } finally {
      outcome.record((performance.now() - started) / 1000);
      span?.end();
    }
  }

  #seed(key: string): boolean {
    if (this.#seeded.has(key)) return false;
    this.#seeded.add(key);
    return true;
  }

  /**
   * Metric attributes whose values come from the catalog or the protocol, never straight from a client:
   * unknown tool and prompt names count as `_unknown`, unknown methods as `_OTHER`, resource URIs are left
   * to spans. (The spans keep what the client sent.)
   */
  #bounded(method: string, attributes: Attributes): Attributes {
    const bounded: Attributes = {};
    for (const key in attributes) if (key !== N.ATTR_MCP_RESOURCE_URI) bounded[key] = attributes[key];
    if (!MCP_METHODS.has(method)) bounded[N.ATTR_MCP_METHOD_NAME] = OTHER_METHOD;
    const tool = bounded[N.ATTR_GEN_AI_TOOL_NAME];
    if (tool !== undefined && !this.#knownTools.has(String(tool)))
      bounded[N.ATTR_GEN_AI_TOOL_NAME] = N.UNKNOWN_TARGET;
    const prompt = bounded[N.ATTR_GEN_AI_PROMPT_NAME];
    if (prompt !== undefined && !this.#knownPrompts.has(String(prompt)))
      bounded[N.ATTR_GEN_AI_PROMPT_NAME] = N.UNKNOWN_TARGET;
    return bounded;
  }

  #loadOf(tool: string, upstream: string): Load {
    // Each call's attemptStart and attemptEnd come for the same tool and upstream: keep the last one aside.
    const last = this.#lastLoad;
    if (last !== undefined && last.tool === tool && last.upstream === upstream) return last;
    let byUpstream = this.#load.get(tool);
    if (!byUpstream) {
      byUpstream = new Map();
      this.#load.set(tool, byUpstream);
    }
    let load = byUpstream.get(upstream);
    if (!load) {
      const labels = { [N.ATTR_TOOL]: tool, [N.ATTR_UPSTREAM]: upstream };
      load = { tool, upstream, labels, inFlight: 0, queued: 0 };
      byUpstream.set(upstream, load);
    }
    this.#lastLoad = load;
    return load;
  }

  #running(call: { tool: string; upstream: string }, delta: number): void {
    this.#loadOf(call.tool, call.upstream).inFlight += delta;
    this.stats.adjust(call.tool, call.upstream, "inFlight", delta);
    this.history.gauge(call.tool, "inFlight", delta);
  }

  #waiting(call: { tool: string; upstream: string }, delta: number): void {
    this.#loadOf(call.tool, call.upstream).queued += delta;
    this.stats.adjust(call.tool, call.upstream, "queued", delta);
    this.history.gauge(call.tool, "queued", delta);
  }

  #startAttempt(call: { tool: string; upstream: string }, attempt: number): void {
    if (!this.#tracing) return;
    const ctx = context.active();
    const parent = trace.getSpan(ctx);
    if (!parent?.isRecording()) return;
    const attributes = {
      [N.ATTR_TOOL]: call.tool,
      [N.ATTR_UPSTREAM]: call.upstream,
      [N.ATTR_ATTEMPT]: attempt,
    };
    const span = this.#tracer.startSpan(N.SPAN_ATTEMPT, { attributes }, ctx);
    this.#attempts.set(parent, span);
  }

  #endAttempt(outcome: "success" | "toolError" | "error", errorCode: ErrorCode | undefined): void {
    if (!this.#tracing) return;
    const call = trace.getSpan(context.active());
    const span = call && this.#attempts.get(call);
    if (!call || !span) return;
    this.#attempts.delete(call);
    if (outcome === "toolError") span.setAttribute(N.ATTR_ERROR_TYPE, N.ERROR_TYPE_TOOL_ERROR);
    if (outcome === "error") {
      span.setAttribute(N.ATTR_ERROR_CODE, errorCode ?? "Internal");
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
    }
    span.end();
  }

  #attemptSpan(ctx: Context): Span | undefined {
    const call = trace.getSpan(ctx);
    return call && this.#attempts.get(call);
  }

  /** A finished wait (queue or lock) as a child of the current attempt, dated back by `waitMs`. */
  #waitSpan(name: string, waitMs: number, attributes: Attributes, errorCode?: string): void {
    if (!this.#tracing) return;
    let ctx = context.active();
    const attempt = this.#attemptSpan(ctx);
    if (attempt) ctx = trace.setSpan(ctx, attempt);
    else if (!trace.getSpan(ctx)?.isRecording()) return;
    const end = performance.timeOrigin + performance.now();
    const span = this.#tracer.startSpan(name, { attributes, startTime: end - waitMs }, ctx);
    if (errorCode) {
      span.setAttribute(N.ATTR_ERROR_CODE, errorCode);
      span.setStatus({ code: SpanStatusCode.ERROR, message: errorCode });
    }
    span.end(end);
  }

  #spanEvent(name: string, attributes: Attributes): void {
    if (!this.#tracing) return;
    const ctx = context.active();
    const span = this.#attemptSpan(ctx) ?? trace.getSpan(ctx);
    if (span?.isRecording()) span.addEvent(name, attributes);
  }

  /** Gauges of a replica sharing a store: store up and latency, leases held, fallback counts. */
  observeCluster(read: () => ClusterView): void {
    const meter = this.#parts.meter;
    meter
      .createObservableGauge(N.METRIC_CLUSTER_STORE_UP, {
        description: "1 while the cluster store (Redis) answers: shared mode; 0: local fallback limits.",
      })
      .addCallback((r) => {
        const v = read();
        r.observe(v.storeUp ? 1 : 0, { [N.ATTR_INSTANCE]: v.instance });
      });
    meter
      .createObservableGauge(N.METRIC_CLUSTER_STORE_LATENCY, {
        description: "Round trip of the last health ping to the cluster store.",
        unit: "s",
      })
      .addCallback((r) => {
        const v = read();
        if (v.latencyMs !== undefined) r.observe(v.latencyMs / 1000, { [N.ATTR_INSTANCE]: v.instance });
      });
    meter
      .createObservableGauge(N.METRIC_CLUSTER_LEASES_HELD, {
        description: "Cluster lock leases this replica holds.",
      })
      .addCallback((r) => {
        const v = read();
        r.observe(v.leasesHeld, { [N.ATTR_INSTANCE]: v.instance });
      });
    meter
      .createObservableCounter(N.METRIC_CLUSTER_EVENTS, {
        description: "Caps fallen back to local limits, locks refused or run locally, leases lost.",
      })
      .addCallback((r) => {
        const v = read();
        for (const [event, count] of Object.entries(v.events)) {
          r.observe(count, { [N.ATTR_INSTANCE]: v.instance, [N.ATTR_CLUSTER_EVENT]: event });
        }
      });
  }

  #observeGauges(meter: Meter): void {
    this.#m.inFlight.addCallback((result) => {
      for (const loads of this.#load.values())
        for (const { labels, inFlight } of loads.values()) result.observe(inFlight, labels);
    });
    this.#m.queued.addCallback((result) => {
      for (const loads of this.#load.values())
        for (const { labels, queued } of loads.values()) result.observe(queued, labels);
    });
    meter
      .createObservableGauge(N.METRIC_BREAKER_STATE, {
        description: "Circuit breaker state: 0 closed, 1 half-open, 2 open.",
      })
      .addCallback((result) => {
        for (const [breaker, state] of this.#breakers) {
          result.observe(N.BREAKER_STATE_VALUE[state], { [N.ATTR_BREAKER]: breaker });
        }
      });
    meter
      .createObservableGauge(N.METRIC_UPSTREAM_UP, {
        description: "1 when the upstream takes calls, else 0.",
      })
      .addCallback((result) => {
        for (const [upstream, { up }] of this.#upstreams)
          result.observe(up ? 1 : 0, { [N.ATTR_UPSTREAM]: upstream });
      });
    meter
      .createObservableGauge(N.METRIC_ALERTS_FIRING, {
        description: "In-process alerts firing now, by rule.",
      })
      .addCallback((result) => {
        const active = this.alerts.active();
        for (const rule of ALERT_RULES) {
          const count = active.filter((a) => a.rule === rule).length;
          result.observe(count, { [N.ATTR_ALERT_RULE]: rule });
        }
      });
  }
}

function newSeries(histogram: HotHistogram, attributes: Attributes): OperationSeries {
  const toolError = Object.freeze({ ...attributes, [N.ATTR_ERROR_TYPE]: N.ERROR_TYPE_TOOL_ERROR });
  return {
    histogram,
    attributes: Object.freeze(attributes),
    ok: histogram.series(attributes),
    toolError: histogram.series(toolError),
    errors: new Map(),
  };
}

/** The series of a failed operation; the error codes are the gateway's and JSON-RPC's (few). */
function errorSeries(series: OperationSeries, code: string): HistogramSeries {
  let found = series.errors.get(code);
  if (!found) {
    found = series.histogram.series(Object.freeze({ ...series.attributes, [N.ATTR_ERROR_TYPE]: code }));
    if (series.errors.size < MAX_SERIES) series.errors.set(code, found);
  }
  return found;
}

function child<K, V>(map: Map<K, Map<string, V>>, key: K): Map<string, V> {
  let found = map.get(key);
  if (!found) {
    found = new Map();
    map.set(key, found);
  }
  return found;
}

/**
 * Series by up to four label values, in nested maps so a lookup builds no composite key. Emptied when it
 * holds MAX_SERIES entries (label values a client could vary, such as a protocol version header). The last
 * hit is kept aside: consecutive calls mostly go to the same series, and then four compares replace four
 * map lookups.
 */
class SeriesTable<V> {
  #root = new Map<string, Map<string, Map<string, Map<string, V>>>>();
  #size = 0;
  #lastA = "";
  #lastB = "";
  #lastC = "";
  #lastD = "";
  #last: V | undefined;

  get(a: string, b: string, c: string, d: string): V | undefined {
    if (
      this.#last !== undefined &&
      a === this.#lastA &&
      b === this.#lastB &&
      c === this.#lastC &&
      d === this.#lastD
    )
      return this.#last;
    const value = this.#root.get(a)?.get(b)?.get(c)?.get(d);
    if (value !== undefined) this.#remember(a, b, c, d, value);
    return value;
  }

  set(a: string, b: string, c: string, d: string, value: V): void {
    if (this.#size >= MAX_SERIES) this.clear();
    const byD = child(child(child(this.#root, a), b), c);
    if (!byD.has(d)) this.#size++;
    byD.set(d, value);
    this.#remember(a, b, c, d, value);
  }

  clear(): void {
    this.#root.clear();
    this.#size = 0;
    this.#last = undefined;
  }

  #remember(a: string, b: string, c: string, d: string, value: V): void {
    this.#lastA = a;
    this.#lastB = b;
    this.#lastC = c;
    this.#lastD = d;
    this.#last = value;
  }
}

function spanName(method: string, target: string | undefined): string {
  return target ? `${method} ${target}` : method;
}

/** The semconv attribute naming a request's target. */
function targetAttribute(method: string): string {
  if (method.startsWith("prompts/")) return N.ATTR_GEN_AI_PROMPT_NAME;
  if (method.startsWith("resources/")) return N.ATTR_MCP_RESOURCE_URI;
  return N.ATTR_GEN_AI_TOOL_NAME;
}

/** A result with `isError: true`, and the gateway's cause when it was the gateway that failed. */
function toolErrorOf(result: unknown): { code?: string; message?: string } | undefined {
  if (typeof result !== "object" || result === null || (result as { isError?: unknown }).isError !== true) {
    return undefined;
  }
  const cause = (result as { _meta?: Record<string, { code?: string; message?: string }> })._meta?.[
    "toolgate/error"
  ];
  return cause ?? {};
}
