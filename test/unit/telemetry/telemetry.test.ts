import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, GatewayError, toToolErrorResult } from "../../../src/errors.ts";
import type { PolicyEvent } from "../../../src/policies/events.ts";
import * as N from "../../../src/telemetry/names.ts";
import type { Telemetry } from "../../../src/telemetry/telemetry.ts";
import { type Harness, harness } from "./harness.ts";

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const CLIENT_SPAN_ID = "b7ad6b7169203331";
const TRACEPARENT = `00-${TRACE_ID}-${CLIENT_SPAN_ID}-01`;

const call = { tool: "gh__create_issue", upstream: "gh", attempt: 1 } as const;
const toolCall = {
  method: "tools/call",
  target: "gh__create_issue",
  transport: "tcp",
  sessionId: "s-1",
  protocolVersion: "2025-11-25",
  requestId: 7,
} as const;

/** The upstream request of that call. */
const upstreamCall = {
  method: "tools/call",
  target: "create_issue",
  upstream: "gh",
  transport: "pipe",
  attempt: 1,
} as const;

let h: Harness;
afterEach(async () => {
  await h?.telemetry.shutdown();
});

/** One tools/call whose pipeline emits `events` around an upstream attempt. */
async function callThrough(t: Telemetry, events: PolicyEvent[], meta?: Record<string, unknown>) {
  let upstreamMeta: Record<string, string> = {};
  await t.serverSpan({ ...toolCall, ...(meta && { meta }) }, async () => {
    t.onPolicyEvent({ type: "attemptStart", ...call });
    for (const event of events) t.onPolicyEvent(event);
    await t.clientSpan(upstreamCall, async (m) => {
      upstreamMeta = m;
      return { content: [] };
    });
    t.onPolicyEvent({ type: "attemptEnd", ...call, durationMs: 3, outcome: "success" });
    return { content: [] };
  });
  return upstreamMeta;
}

describe("serverSpan", () => {
  it("names a tools/call SERVER span after method and tool and sets the MCP attributes", async () => {
    h = harness();
    await h.telemetry.serverSpan(toolCall, async () => ({ content: [] }));
    const span = h.span("tools/call gh__create_issue");
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.attributes).toMatchObject({
      [N.ATTR_MCP_METHOD_NAME]: "tools/call",
      [N.ATTR_GEN_AI_TOOL_NAME]: "gh__create_issue",
      [N.ATTR_GEN_AI_OPERATION_NAME]: "execute_tool",
      [N.ATTR_MCP_SESSION_ID]: "s-1",
      [N.ATTR_MCP_PROTOCOL_VERSION]: "2025-11-25",
      [N.ATTR_JSONRPC_REQUEST_ID]: "7",
      [N.ATTR_NETWORK_TRANSPORT]: "tcp",
    });
    expect(span.attributes[N.ATTR_ERROR_TYPE]).toBeUndefined();
  });

  it("names a span without a target after its method alone", async () => {
    h = harness();
    await h.telemetry.serverSpan({ method: "tools/list", transport: "pipe" }, async () => ({ tools: [] }));
    expect(h.span("tools/list").attributes[N.ATTR_GEN_AI_OPERATION_NAME]).toBeUndefined();
  });

  it("continues the client's trace from traceparent in params._meta", async () => {
    h = harness();
    await h.telemetry.serverSpan({ ...toolCall, meta: { traceparent: TRACEPARENT } }, async () => ({}));
    const span = h.span("tools/call gh__create_issue");
    expect(span.spanContext().traceId).toBe(TRACE_ID);
    expect(span.parentSpanContext?.spanId).toBe(CLIENT_SPAN_ID);
  });

  it("prefers the trace context in _meta over the HTTP headers", async () => {
    h = harness();
    const headers = new Headers({ traceparent: `00-${"1".repeat(32)}-${"2".repeat(16)}-01` });
    await h.telemetry.serverSpan(
      { ...toolCall, meta: { traceparent: TRACEPARENT }, headers },
      async () => ({}),
    );
    expect(h.span("tools/call gh__create_issue").spanContext().traceId).toBe(TRACE_ID);
  });

  it("reads the trace context from the SDK's plain header object too", async () => {
    h = harness();
    const headers = { traceparent: TRACEPARENT, accept: ["a", "b"] };
    await h.telemetry.serverSpan({ ...toolCall, headers }, async () => ({}));
    expect(h.span("tools/call gh__create_issue").spanContext().traceId).toBe(TRACE_ID);
  });

  it("takes the trace context from HTTP headers when _meta has none", async () => {
    h = harness();
    const headers = new Headers({ traceparent: TRACEPARENT });
    await h.telemetry.serverSpan({ ...toolCall, meta: { progressToken: 1 }, headers }, async () => ({}));
    expect(h.span("tools/call gh__create_issue").spanContext().traceId).toBe(TRACE_ID);
  });

  it("records a thrown failure as error.type with its JSON-RPC code, and rethrows it", async () => {
    h = harness();
    const failure = new GatewayError(ErrorCode.CircuitOpen, "open", { upstream: "gh" });
    await expect(
      h.telemetry.serverSpan(toolCall, async () => {
        throw failure;
      }),
    ).rejects.toBe(failure);
    const span = h.span("tools/call gh__create_issue");
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
    expect(span.attributes).toMatchObject({
      [N.ATTR_ERROR_TYPE]: "-32005",
      [N.ATTR_RPC_RESPONSE_STATUS_CODE]: "-32005",
      [N.ATTR_ERROR_CODE]: "CircuitOpen",
    });
    const point = await h.metrics.histogram(N.METRIC_MCP_SERVER_OPERATION_DURATION, {
      [N.ATTR_ERROR_TYPE]: "-32005",
    });
    expect(point?.count).toBe(1);
  });

  it("marks an isError result as tool_error and keeps the gateway's cause", async () => {
    h = harness();
    const result = toToolErrorResult(new GatewayError(ErrorCode.QueueFull, "full", { upstream: "gh" }));
    await expect(h.telemetry.serverSpan(toolCall, async () => result)).resolves.toBe(result);
    const span = h.span("tools/call gh__create_issue");
    expect(span.attributes[N.ATTR_ERROR_TYPE]).toBe("tool_error");
    expect(span.attributes[N.ATTR_ERROR_CODE]).toBe("QueueFull");
    expect(span.status.code).toBe(SpanStatusCode.ERROR);
  });

  it("records mcp.server.operation.duration in seconds with the semconv buckets", async () => {
    h = harness();
    h.telemetry.catalogChanged({
      tools: [{ name: "gh__create_issue", upstream: "gh" }],
      prompts: [],
      upstreams: ["gh"],
      breakers: [],
    });
    await h.telemetry.serverSpan(toolCall, async () => ({}));
    const point = await h.metrics.histogram(N.METRIC_MCP_SERVER_OPERATION_DURATION, {
      [N.ATTR_MCP_METHOD_NAME]: "tools/call",
      [N.ATTR_GEN_AI_TOOL_NAME]: "gh__create_issue",
      [N.ATTR_NETWORK_TRANSPORT]: "tcp",
    });
    expect(point?.count).toBe(1);
    expect(point?.buckets.boundaries).toEqual(N.DURATION_BUCKETS_S);
    // The session id is a span attribute, never a metric label (unbounded cardinality).
    const points = await h.metrics.points(N.METRIC_MCP_SERVER_OPERATION_DURATION);
    expect(points.every((p) => p.attributes[N.ATTR_MCP_SESSION_ID] === undefined)).toBe(true);
  });
});

describe("label values from clients", () => {
  it("counts tool names outside the catalog and unknown methods under one value each", async () => {
    h = harness();
    h.telemetry.catalogChanged({ tools: [], prompts: ["greet"], upstreams: [], breakers: [] });
    for (const name of ["a", "b", "c"]) {
      await h.telemetry.serverSpan(
        { method: "tools/call", target: name, transport: "tcp" },
        async () => ({}),
      );
    }
    await h.telemetry.serverSpan(
      { method: "prompts/get", target: "greet", transport: "tcp" },
      async () => ({}),
    );
    await h.telemetry.serverSpan({ method: "x/y", transport: "tcp" }, async () => ({}));
    await h.telemetry.serverSpan(
      { method: "resources/read", target: "file:///secret/1", transport: "tcp" },
      async () => ({}),
    );
    const points = await h.metrics.points(N.METRIC_MCP_SERVER_OPERATION_DURATION);
    const tools = points.filter((p) => p.attributes[N.ATTR_GEN_AI_TOOL_NAME] !== undefined);
    expect(tools.map((p) => p.attributes[N.ATTR_GEN_AI_TOOL_NAME])).toEqual(["_unknown"]);
    expect(points.some((p) => p.attributes[N.ATTR_GEN_AI_PROMPT_NAME] === "greet")).toBe(true);
    expect(points.some((p) => p.attributes[N.ATTR_MCP_METHOD_NAME] === "_OTHER")).toBe(true);
    expect(points.some((p) => p.attributes[N.ATTR_MCP_RESOURCE_URI] !== undefined)).toBe(false);
    // The span keeps what the client sent.
    expect(h.span("tools/call a").attributes[N.ATTR_GEN_AI_TOOL_NAME]).toBe("a");
  });
});

describe("clientSpan", () => {
  it("makes the CLIENT span a child of the attempt span under the SERVER span, in the client's trace", async () => {
    h = harness();
    await callThrough(h.telemetry, [], { traceparent: TRACEPARENT });
    const server = h.span("tools/call gh__create_issue");
    const attempt = h.span(N.SPAN_ATTEMPT);
    const client = h.span("tools/call create_issue");
    expect(client.kind).toBe(SpanKind.CLIENT);
    expect(attempt.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(client.parentSpanContext?.spanId).toBe(attempt.spanContext().spanId);
    expect(client.spanContext().traceId).toBe(TRACE_ID);
    expect(client.attributes).toMatchObject({
      [N.ATTR_UPSTREAM]: "gh",
      [N.ATTR_ATTEMPT]: 1,
      [N.ATTR_NETWORK_TRANSPORT]: "pipe",
      [N.ATTR_GEN_AI_TOOL_NAME]: "create_issue",
    });
    expect(attempt.attributes[N.ATTR_ATTEMPT]).toBe(1);
  });

  it("hands the upstream a traceparent naming the CLIENT span", async () => {
    h = harness();
    const meta = await callThrough(h.telemetry, [], { traceparent: TRACEPARENT });
    const client = h.span("tools/call create_issue");
    expect(meta.traceparent).toBe(`00-${TRACE_ID}-${client.spanContext().spanId}-01`);
  });

  it("makes no span for a call the sampler left out, and hands the upstream its not-sampled context", async () => {
    // The client's trace is not sampled (flags 00): the parent-based default follows it.
    h = harness();
    const unsampled = `00-${TRACE_ID}-${CLIENT_SPAN_ID}-00`;
    const meta = await callThrough(h.telemetry, [], { traceparent: unsampled });
    expect(h.spans.getFinishedSpans()).toHaveLength(0);
    expect(meta.traceparent).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
    // A ratio of 0 leaves out a new trace; it still reaches the upstream, marked not sampled.
    await h.telemetry.shutdown();
    h = harness({ traces: { sampleRatio: 0 } });
    const fresh = await callThrough(h.telemetry, []);
    expect(h.spans.getFinishedSpans()).toHaveLength(0);
    expect(fresh.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
    expect(fresh.traceparent).not.toContain(TRACE_ID);
    // The same gateway still traces a call whose client sampled it.
    await callThrough(h.telemetry, [], { traceparent: TRACEPARENT });
    expect(h.spans.getFinishedSpans().map((s) => s.name)).toEqual([
      "tools/call create_issue",
      N.SPAN_ATTEMPT,
      "tools/call gh__create_issue",
    ]);
  });

  it("makes a root CLIENT span for an upstream call outside any request", async () => {
    h = harness();
    const meta = await h.telemetry.clientSpan(upstreamCall, async (m) => m);
    const client = h.span("tools/call create_issue");
    expect(client.parentSpanContext).toBeUndefined();
    expect(meta.traceparent).toBe(`00-${client.spanContext().traceId}-${client.spanContext().spanId}-01`);
  });

  it("passes the client's trace context through to the upstream when tracing is off", async () => {
    h = harness({}, { tracing: false });
    const meta = await callThrough(h.telemetry, [], { traceparent: TRACEPARENT, tracestate: "vendor=1" });
    expect(meta).toEqual({ traceparent: TRACEPARENT, tracestate: "vendor=1" });
    expect(h.spans.getFinishedSpans()).toHaveLength(0);
  });

  it("sends no trace context upstream when there is none and tracing is off", async () => {
    h = harness({}, { tracing: false });
    expect(await callThrough(h.telemetry, [])).toEqual({});
  });

  it("records mcp.client.operation.duration per upstream with error.type on failure", async () => {
    h = harness();
    const info = { ...upstreamCall, transport: "tcp", attempt: 2 } as const;
    await expect(
      h.telemetry.clientSpan(info, async () => {
        throw new GatewayError(ErrorCode.UpstreamTimeout, "slow", { upstream: "gh" });
      }),
    ).rejects.toThrow("slow");
    const point = await h.metrics.histogram(N.METRIC_MCP_CLIENT_OPERATION_DURATION, {
      [N.ATTR_UPSTREAM]: "gh",
      [N.ATTR_ERROR_TYPE]: "-32004",
    });
    expect(point?.count).toBe(1);
  });
});

describe("policy events", () => {
  it("dates queue and lock waits back as child spans of the attempt", async () => {
    h = harness();
    await callThrough(h.telemetry, [
      { type: "queued", ...call, bulkhead: "tool:gh__create_issue", priority: 0, queued: 1 },
      { type: "dequeued", ...call, bulkhead: "tool:gh__create_issue", waitMs: 40 },
      { type: "lockAcquired", ...call, lock: "path=/a", waitMs: 25 },
    ]);
    const attempt = h.span(N.SPAN_ATTEMPT);
    const queue = h.span(N.SPAN_QUEUE_WAIT);
    const lock = h.span(N.SPAN_LOCK_WAIT);
    expect(queue.parentSpanContext?.spanId).toBe(attempt.spanContext().spanId);
    expect(lock.parentSpanContext?.spanId).toBe(attempt.spanContext().spanId);
    expect(queue.duration[0] * 1e3 + queue.duration[1] / 1e6).toBeCloseTo(40, 0);
    expect(lock.attributes[N.ATTR_LOCK_KEY]).toBe("path=/a");
  });

  it("creates no lock span when the lock was free", async () => {
    h = harness();
    await callThrough(h.telemetry, [{ type: "lockAcquired", ...call, lock: "l", waitMs: 0 }]);
    expect(h.spans.getFinishedSpans().some((s) => s.name === N.SPAN_LOCK_WAIT)).toBe(false);
    expect((await h.metrics.histogram(N.METRIC_LOCK_WAIT))?.count).toBe(1);
  });

  it("adds retry, timeout, breaker and fallback span events to the attempt", async () => {
    h = harness();
    await callThrough(h.telemetry, [
      { type: "timeout", ...call, limit: "attempt", ms: 100 },
      { type: "retryScheduled", ...call, delayMs: 200, errorCode: "UpstreamTimeout" },
      { type: "breakerRejected", ...call, breaker: "gh", state: "open", nextAttemptAt: 1 },
      { type: "fallback", ...call, from: "gh__create_issue", to: "gl__create_issue", reason: "CircuitOpen" },
    ]);
    const events = h.span(N.SPAN_ATTEMPT).events.map((e) => e.name);
    expect(events).toEqual([N.EVENT_TIMEOUT, N.EVENT_RETRY, N.EVENT_BREAKER_REJECTED, N.EVENT_FALLBACK]);
    const labels = { [N.ATTR_TOOL]: "gh__create_issue", [N.ATTR_UPSTREAM]: "gh" };
    expect(await h.metrics.value(N.METRIC_RETRIES, labels)).toBe(1);
    expect(await h.metrics.value(N.METRIC_TIMEOUTS, { ...labels, [N.ATTR_SCOPE]: "attempt" })).toBe(1);
    expect(await h.metrics.value(N.METRIC_BREAKER_REJECTIONS, { [N.ATTR_BREAKER]: "gh" })).toBe(1);
    expect(await h.metrics.value(N.METRIC_FALLBACKS, { [N.ATTR_FALLBACK_TO]: "gl__create_issue" })).toBe(1);
  });

  it("marks the attempt span failed with the error code of a failed attempt", async () => {
    h = harness();
    await h.telemetry.serverSpan(toolCall, async () => {
      h.telemetry.onPolicyEvent({ type: "attemptStart", ...call });
      h.telemetry.onPolicyEvent({
        type: "attemptEnd",
        ...call,
        durationMs: 1,
        outcome: "error",
        errorCode: "UpstreamUnavailable",
        errorClass: "transient",
      });
      return {};
    });
    const attempt = h.span(N.SPAN_ATTEMPT);
    expect(attempt.status.code).toBe(SpanStatusCode.ERROR);
    expect(attempt.attributes[N.ATTR_ERROR_CODE]).toBe("UpstreamUnavailable");
  });

  it("counts running attempts as in flight and waiting ones as queued", async () => {
    h = harness();
    const t = h.telemetry;
    const labels = { [N.ATTR_TOOL]: "gh__create_issue", [N.ATTR_UPSTREAM]: "gh" };
    t.onPolicyEvent({ type: "attemptStart", ...call });
    t.onPolicyEvent({ type: "attemptStart", ...call, attempt: 1 });
    t.onPolicyEvent({ type: "queued", ...call, bulkhead: "b", priority: 0, queued: 1 });
    expect(await h.metrics.value(N.METRIC_CALLS_IN_FLIGHT, labels)).toBe(1);
    expect(await h.metrics.value(N.METRIC_CALLS_QUEUED, labels)).toBe(1);
    expect(t.stats.get("gh__create_issue")).toMatchObject({ inFlight: 1, queued: 1 });

    t.onPolicyEvent({ type: "rejected", ...call, bulkhead: "b", code: "QueueTimeout", waitMs: 30 });
    t.onPolicyEvent({
      type: "attemptEnd",
      ...call,
      durationMs: 30,
      outcome: "error",
      errorCode: "QueueTimeout",
    });
    expect(await h.metrics.value(N.METRIC_CALLS_QUEUED, labels)).toBe(0);
    expect(await h.metrics.value(N.METRIC_CALLS_IN_FLIGHT, labels)).toBe(1);
    expect((await h.metrics.histogram(N.METRIC_QUEUE_WAIT, labels))?.sum).toBeCloseTo(0.03);
  });

  it("does not count a full-queue rejection as leaving the queue", async () => {
    h = harness();
    h.telemetry.onPolicyEvent({ type: "attemptStart", ...call });
    h.telemetry.onPolicyEvent({ type: "rejected", ...call, bulkhead: "b", code: "QueueFull", waitMs: 0 });
    h.telemetry.onPolicyEvent({ type: "attemptEnd", ...call, durationMs: 0, outcome: "error" });
    expect(h.telemetry.stats.get("gh__create_issue")).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it("exports each breaker's state as a gauge and counts its transitions", async () => {
    h = harness();
    const { onPolicyEvent } = h.telemetry; // bound: passes to a hub as is
    onPolicyEvent({ type: "breakerStateChange", breaker: "gh", from: "closed", to: "open" });
    h.telemetry.onPolicyEvent({ type: "breakerStateChange", breaker: "gl", from: "closed", to: "open" });
    h.telemetry.onPolicyEvent({ type: "breakerStateChange", breaker: "gl", from: "open", to: "halfOpen" });
    expect(await h.metrics.value(N.METRIC_BREAKER_STATE, { [N.ATTR_BREAKER]: "gh" })).toBe(2);
    expect(await h.metrics.value(N.METRIC_BREAKER_STATE, { [N.ATTR_BREAKER]: "gl" })).toBe(1);
    const opened = { [N.ATTR_BREAKER]: "gl", [N.ATTR_BREAKER_STATE]: "open" };
    expect(await h.metrics.value(N.METRIC_BREAKER_TRANSITIONS, opened)).toBe(1);
  });
});

describe("recordCall", () => {
  it("counts calls by outcome, errors by code and class, and feeds the rolling stats", async () => {
    h = harness();
    const t = h.telemetry;
    t.recordCall({
      tool: "a__x",
      upstream: "a",
      outcome: "ok",
      durationMs: 20,
      requestBytes: 300,
      responseBytes: 5000,
    });
    t.recordCall({ tool: "a__x", upstream: "a", outcome: "tool_error", durationMs: 30 });
    t.recordCall({
      tool: "a__x",
      upstream: "a",
      outcome: "error",
      errorCode: "UpstreamTimeout",
      errorClass: "transient",
      durationMs: 1500,
    });
    const a = { [N.ATTR_TOOL]: "a__x", [N.ATTR_UPSTREAM]: "a" };
    expect(await h.metrics.value(N.METRIC_CALLS, { ...a, [N.ATTR_OUTCOME]: "ok" })).toBe(1);
    expect(await h.metrics.value(N.METRIC_CALLS, { ...a, [N.ATTR_OUTCOME]: "tool_error" })).toBe(1);
    expect(
      await h.metrics.value(N.METRIC_CALL_ERRORS, {
        ...a,
        [N.ATTR_ERROR_CODE]: "UpstreamTimeout",
        [N.ATTR_ERROR_CLASS]: "transient",
      }),
    ).toBe(1);
    const failed = await h.metrics.histogram(N.METRIC_CALL_DURATION, {
      ...a,
      [N.ATTR_ERROR_CLASS]: "transient",
    });
    expect(failed?.sum).toBeCloseTo(1.5);
    expect((await h.metrics.histogram(N.METRIC_CALL_RESPONSE_SIZE, a))?.sum).toBe(5000);
    expect((await h.metrics.histogram(N.METRIC_CALL_REQUEST_SIZE, a))?.sum).toBe(300);
    expect(t.stats.get("a__x")).toMatchObject({ calls: 3, errors: 1, toolErrors: 1 });
  });
});

describe("upstreams and sessions", () => {
  it("exports whether each upstream is up and counts restarts by their increase", async () => {
    h = harness();
    const t = h.telemetry;
    t.upstreamStatus({ name: "gh", state: "ready", restarts: 0 });
    t.upstreamStatus({ name: "gh", state: "down", restarts: 0, lastError: "EPIPE" });
    t.upstreamStatus({ name: "gh", state: "ready", restarts: 1 });
    t.upstreamStatus({ name: "gh", state: "down", restarts: 1 });
    t.upstreamStatus({ name: "gh", state: "ready", restarts: 3 });
    t.upstreamStatus({ name: "fs", state: "connecting", restarts: 0 });
    expect(await h.metrics.value(N.METRIC_UPSTREAM_UP, { [N.ATTR_UPSTREAM]: "gh" })).toBe(1);
    expect(await h.metrics.value(N.METRIC_UPSTREAM_UP, { [N.ATTR_UPSTREAM]: "fs" })).toBe(0);
    expect(await h.metrics.value(N.METRIC_UPSTREAM_RESTARTS, { [N.ATTR_UPSTREAM]: "gh" })).toBe(3);
  });

  it("records mcp.client.session.duration for each upstream connection that ends", async () => {
    h = harness();
    const t = h.telemetry;
    t.upstreamStatus({ name: "gh", state: "connecting", restarts: 0, transport: "stdio" });
    t.upstreamStatus({ name: "gh", state: "ready", restarts: 0, transport: "stdio" });
    t.upstreamStatus({ name: "gh", state: "down", restarts: 0, transport: "stdio" });
    t.upstreamStatus({ name: "gh", state: "ready", restarts: 1, transport: "stdio" });
    t.upstreamStatus({ name: "gh", state: "stopped", restarts: 1, transport: "stdio" });
    const points = await h.metrics.points<{ count: number }>(N.METRIC_MCP_CLIENT_SESSION_DURATION);
    const lost = points.find((p) => p.attributes[N.ATTR_ERROR_TYPE] === "connection_lost");
    const stopped = points.find((p) => p.attributes[N.ATTR_ERROR_TYPE] === undefined);
    expect(lost?.value.count).toBe(1);
    expect(stopped?.value.count).toBe(1);
    expect(stopped?.attributes).toEqual({ [N.ATTR_UPSTREAM]: "gh", [N.ATTR_NETWORK_TRANSPORT]: "pipe" });
  });

  it("tracks open sessions and records session duration per transport", async () => {
    h = harness();
    h.telemetry.sessionOpened("tcp");
    h.telemetry.sessionOpened("tcp");
    h.telemetry.sessionOpened("pipe");
    h.telemetry.sessionClosed("tcp", 90_000);
    const tcp = { [N.ATTR_NETWORK_TRANSPORT]: "tcp" };
    expect(await h.metrics.value(N.METRIC_SESSIONS_OPEN, tcp)).toBe(1);
    expect(await h.metrics.value(N.METRIC_SESSIONS_OPEN, { [N.ATTR_NETWORK_TRANSPORT]: "pipe" })).toBe(1);
    const duration = await h.metrics.histogram(N.METRIC_MCP_SERVER_SESSION_DURATION, tcp);
    expect(duration?.sum).toBe(90);
  });
});
