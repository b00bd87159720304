/**
 * Telemetry through the real call path: router → policy pipeline → upstream (an MCP server over Streamable
 * HTTP on 127.0.0.1), with in-memory span and metric exporters. Calls that succeed, retry, time out and hit
 * an open breaker; the client's trace id must reach the upstream in `_meta`.
 */
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { StatusReport } from "../../src/server/status/source.ts";
import * as N from "../../src/telemetry/names.ts";
import { type Harness, harness } from "../unit/telemetry/harness.ts";
import {
  startTracedServer,
  startWiredGateway,
  type TracedServer,
  type WiredGateway,
} from "../unit/telemetry/wired-gateway.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const TRACEPARENT = `00-${TRACE_ID}-00f067aa0ba902b7-01`;

let upstream: TracedServer;
let gateway: WiredGateway;
let h: Harness;

beforeAll(async () => {
  upstream = await startTracedServer();
  h = harness();
  gateway = await startWiredGateway(
    {
      mcpServers: { traced: { type: "http", url: upstream.url } },
      defaults: { retry: { baseDelayMs: 5, maxDelayMs: 10 }, breaker: { enabled: false } },
      upstreams: {
        traced: {
          tools: {
            hang: { timeout: { attemptMs: 150 }, retry: { maxAttempts: 1 } },
            boom: {
              retry: { maxAttempts: 1 },
              breaker: { enabled: true, scope: "tool", volumeThreshold: 2, resetTimeoutMs: 60_000 },
            },
          },
        },
      },
    },
    h.telemetry,
  );
  await gateway.ready(["traced__echo", "traced__flaky", "traced__boom", "traced__hang"]);
}, 20_000);

afterAll(async () => {
  await gateway?.stop();
  await upstream?.close();
  await h?.telemetry.shutdown();
});

beforeEach(() => {
  h.spans.reset();
});

const spans = (name: string): ReadableSpan[] => h.spans.getFinishedSpans().filter((s) => s.name === name);
const tool = (name: string) => ({ [N.ATTR_TOOL]: name, [N.ATTR_UPSTREAM]: "traced" });

describe("a successful call", () => {
  it("continues the client's trace through SERVER, attempt and CLIENT spans to the upstream's _meta", async () => {
    const result = await gateway.call("traced__echo", {}, { traceparent: TRACEPARENT, progressToken: 5 });
    expect(result.isError).toBeUndefined();

    const [server] = spans("tools/call traced__echo");
    const [attempt] = spans(N.SPAN_ATTEMPT);
    const [client] = spans("tools/call echo");
    expect(server?.kind).toBe(SpanKind.SERVER);
    expect(client?.kind).toBe(SpanKind.CLIENT);
    expect(server?.spanContext().traceId).toBe(TRACE_ID);
    expect(attempt?.parentSpanContext?.spanId).toBe(server?.spanContext().spanId);
    expect(client?.parentSpanContext?.spanId).toBe(attempt?.spanContext().spanId);
    expect(client?.attributes).toMatchObject({
      [N.ATTR_UPSTREAM]: "traced",
      [N.ATTR_NETWORK_TRANSPORT]: "tcp",
    });

    const received = upstream.metas.at(-1);
    expect(received?.traceparent).toBe(`00-${TRACE_ID}-${client?.spanContext().spanId}-01`);
  });

  it("counts the call and measures both the server and the client operation", async () => {
    await gateway.call("traced__echo");
    expect(await h.metrics.value(N.METRIC_CALLS, { ...tool("traced__echo"), [N.ATTR_OUTCOME]: "ok" })).toBe(
      2,
    );
    const client = await h.metrics.histogram(N.METRIC_MCP_CLIENT_OPERATION_DURATION, {
      [N.ATTR_UPSTREAM]: "traced",
    });
    expect(client?.count).toBeGreaterThanOrEqual(2);
    const server = await h.metrics.histogram(N.METRIC_MCP_SERVER_OPERATION_DURATION, {
      [N.ATTR_GEN_AI_TOOL_NAME]: "traced__echo",
    });
    expect(server?.count).toBe(2);
    expect(h.telemetry.stats.get("traced__echo")).toMatchObject({
      calls: 2,
      errors: 0,
      inFlight: 0,
      queued: 0,
    });
  });
});

describe("a retried call", () => {
  it("shows each attempt with its number and the retry as an event, and counts the retry", async () => {
    const result = await gateway.call("traced__flaky");
    expect(result.isError).toBeUndefined();
    const attempts = spans(N.SPAN_ATTEMPT);
    expect(attempts.map((s) => s.attributes[N.ATTR_ATTEMPT])).toEqual([1, 2]);
    expect(attempts[0]?.status.code).toBe(SpanStatusCode.ERROR);
    // The retry is decided after the attempt ended: its event is on the call's span.
    const [server] = spans("tools/call traced__flaky");
    const retry = server?.events.find((e) => e.name === N.EVENT_RETRY);
    expect(retry?.attributes).toMatchObject({ [N.ATTR_ATTEMPT]: 1, [N.ATTR_ERROR_CODE]: "UpstreamError" });
    const clients = spans("tools/call flaky");
    expect(clients.map((s) => s.attributes[N.ATTR_ATTEMPT])).toEqual([1, 2]);
    expect(clients.map((s) => s.parentSpanContext?.spanId)).toEqual(
      attempts.map((s) => s.spanContext().spanId),
    );
    expect(await h.metrics.value(N.METRIC_RETRIES, tool("traced__flaky"))).toBe(1);
    expect(await h.metrics.value(N.METRIC_CALLS, { ...tool("traced__flaky"), [N.ATTR_OUTCOME]: "ok" })).toBe(
      1,
    );
  });
});

describe("a call that times out", () => {
  it("returns an isError result that the SERVER span marks, and counts the attempt timeout", async () => {
    const result = await gateway.call("traced__hang");
    expect(result.isError).toBe(true);
    const [server] = spans("tools/call traced__hang");
    expect(server?.attributes).toMatchObject({
      [N.ATTR_ERROR_TYPE]: "tool_error",
      [N.ATTR_ERROR_CODE]: "UpstreamTimeout",
    });
    expect(
      await h.metrics.value(N.METRIC_TIMEOUTS, { ...tool("traced__hang"), [N.ATTR_SCOPE]: "attempt" }),
    ).toBe(1);
    const errors = {
      ...tool("traced__hang"),
      [N.ATTR_ERROR_CODE]: "UpstreamTimeout",
      [N.ATTR_ERROR_CLASS]: "transient",
    };
    expect(await h.metrics.value(N.METRIC_CALL_ERRORS, errors)).toBe(1);
    expect(h.telemetry.stats.get("traced__hang")).toMatchObject({ calls: 1, errors: 1, inFlight: 0 });
  });
});

describe("a breaker that opens", () => {
  it("exports the open state, counts the rejection and records it on the rejected call's span", async () => {
    await gateway.call("traced__boom");
    await gateway.call("traced__boom");
    const upstreamCalls = upstream.metas.length;
    h.spans.reset();

    const rejected = await gateway.call("traced__boom");
    expect(rejected.isError).toBe(true);
    expect(upstream.metas.length).toBe(upstreamCalls); // failed fast: the upstream saw nothing
    expect(spans("tools/call boom")).toHaveLength(0);
    const [attempt] = spans(N.SPAN_ATTEMPT);
    expect(attempt?.events.map((e) => e.name)).toContain(N.EVENT_BREAKER_REJECTED);

    const breaker = { [N.ATTR_BREAKER]: "tool:traced__boom" };
    expect(await h.metrics.value(N.METRIC_BREAKER_STATE, breaker)).toBe(2);
    expect(
      await h.metrics.value(N.METRIC_BREAKER_TRANSITIONS, { ...breaker, [N.ATTR_BREAKER_STATE]: "open" }),
    ).toBe(1);
    expect(await h.metrics.value(N.METRIC_BREAKER_REJECTIONS, breaker)).toBe(1);
    const circuitOpen = { ...tool("traced__boom"), [N.ATTR_ERROR_CODE]: "CircuitOpen" };
    expect(await h.metrics.value(N.METRIC_CALL_ERRORS, circuitOpen)).toBe(1);
  });

  it("shows on /status and /metrics", async () => {
    const report = (await (await fetch(`${gateway.base}/status`)).json()) as StatusReport;
    expect(report.breakers).toContainEqual(
      expect.objectContaining({ id: "tool:traced__boom", state: "open" }),
    );
    expect(report.tools.find((t) => t.name === "traced__boom")).toMatchObject({ calls: 3, errors: 3 });
    expect(report.upstreams).toEqual([expect.objectContaining({ name: "traced", state: "ready" })]);

    const metrics = await (await fetch(`${gateway.base}/metrics`)).text();
    expect(metrics).toContain('toolgate_breaker_state{toolgate_breaker="tool:traced__boom"} 2');
    expect(metrics).toContain('toolgate_upstream_up{toolgate_upstream="traced"} 1');
  });
});

describe("after every call", () => {
  it("has nothing in flight or queued", async () => {
    for (const point of await h.metrics.points(N.METRIC_CALLS_IN_FLIGHT)) expect(point.value).toBe(0);
    for (const point of await h.metrics.points(N.METRIC_CALLS_QUEUED)) expect(point.value).toBe(0);
    expect((await h.metrics.points(N.METRIC_CALLS_IN_FLIGHT)).length).toBeGreaterThan(0);
  });
});
