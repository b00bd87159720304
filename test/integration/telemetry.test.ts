/**
 * Telemetry of the real gateway (app.ts, served on 127.0.0.1) with in-memory span and metric exporters,
 * driven by the official SDK client over Streamable HTTP, with a real upstream (a traced MCP server over
 * Streamable HTTP). Calls that succeed, retry, wait in a queue or for a lock, time out and hit an open
 * breaker; the client's trace context must be continued and reach the upstream in `_meta`.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { type JSONRPCMessage, LATEST_PROTOCOL_VERSION } from "@modelcontextprotocol/sdk/types.js";
import { SpanKind, SpanStatusCode } from "@opentelemetry/api";
import type { Histogram } from "@opentelemetry/sdk-metrics";
import type { ReadableSpan } from "@opentelemetry/sdk-trace-base";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { Gateway } from "../../src/app.ts";
import type { StatusReport } from "../../src/server/status/source.ts";
import * as N from "../../src/telemetry/names.ts";
import { startTracedServer, type TracedServer } from "../fixtures/traced-server.ts";
import { eventually, startGateway } from "../helpers/gateway.ts";
import { type Harness, harness } from "../unit/telemetry/harness.ts";

const TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN_ID = "00f067aa0ba902b7";
const TRACEPARENT = `00-${TRACE_ID}-${CLIENT_SPAN_ID}-01`;
const TOOLS = ["echo", "flaky", "boom", "hang", "slow", "write"].map((t) => `traced__${t}`);

interface Connection {
  client: Client;
  transport: StreamableHTTPClientTransport;
  /** Every JSON-RPC message the client sent. */
  sent: JSONRPCMessage[];
}

let upstream: TracedServer;
let h: Harness;
let gateway: Gateway;
let base: string;
let conn: Connection;

/** The official SDK client over Streamable HTTP, recording what it sends; `headers` go on every request. */
async function connect(headers?: Record<string, string>): Promise<Connection> {
  const transport = new StreamableHTTPClientTransport(
    new URL(`${base}/mcp`),
    headers ? { requestInit: { headers } } : undefined,
  );
  const sent: JSONRPCMessage[] = [];
  const send = transport.send.bind(transport);
  transport.send = (message, options) => {
    sent.push(...[message].flat());
    return send(message, options);
  };
  const client = new Client({ name: "telemetry-test", version: "1.0.0" });
  await client.connect(transport);
  return { client, transport, sent };
}

/** The JSON-RPC id of the last tools/call of `tool` the connection sent. */
function requestIdOf(connection: Connection, tool: string): string {
  const request = connection.sent.findLast(
    (m) => "method" in m && m.method === "tools/call" && m.params?.name === tool,
  );
  if (!request || !("id" in request)) throw new Error(`no tools/call of ${tool} was sent`);
  return String(request.id);
}

function call(name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) {
  return conn.client.callTool({ name, arguments: args, ...(meta && { _meta: meta }) });
}

beforeAll(async () => {
  upstream = await startTracedServer();
  h = harness();
  const started = await startGateway(
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
            slow: { retry: { maxAttempts: 1 }, concurrency: { maxInFlight: 1, queueSize: 4 } },
            write: { retry: { maxAttempts: 1 }, lock: { key: "path" } },
          },
        },
      },
    },
    // The real gateway with the in-memory telemetry injected (it shuts the telemetry down on stop).
    { telemetry: h.telemetry },
  );
  gateway = started.gateway;
  base = started.base;
  conn = await connect();
  await eventually(async () => {
    const names = new Set((await conn.client.listTools()).tools.map((t) => t.name));
    return TOOLS.every((t) => names.has(t));
  });
});

afterAll(async () => {
  await conn?.client.close();
  await gateway?.stop();
  await upstream?.close();
});

beforeEach(() => {
  h.spans.reset();
});

const spans = (name: string): ReadableSpan[] => h.spans.getFinishedSpans().filter((s) => s.name === name);
const only = (name: string): ReadableSpan => {
  const found = spans(name);
  expect(found.map((s) => s.name)).toEqual([name]);
  return found[0] as ReadableSpan;
};
const childrenOf = (parent: ReadableSpan, name: string): ReadableSpan[] =>
  spans(name).filter((s) => s.parentSpanContext?.spanId === parent.spanContext().spanId);
const tool = (name: string) => ({ [N.ATTR_TOOL]: name, [N.ATTR_UPSTREAM]: "traced" });
const upstreamCalls = (name: string) => upstream.calls.filter((c) => c.tool === name);

describe("a successful call", () => {
  it("continues the client's _meta trace through SERVER, attempt and CLIENT spans into the upstream's _meta", async () => {
    const result = await call("traced__echo", {}, { traceparent: TRACEPARENT, progressToken: 5 });
    expect(result.isError).toBeUndefined();

    const server = only("tools/call traced__echo");
    expect(server.kind).toBe(SpanKind.SERVER);
    expect(server.spanContext().traceId).toBe(TRACE_ID);
    expect(server.parentSpanContext?.spanId).toBe(CLIENT_SPAN_ID);
    expect(server.attributes).toMatchObject({
      [N.ATTR_MCP_METHOD_NAME]: "tools/call",
      [N.ATTR_GEN_AI_TOOL_NAME]: "traced__echo",
      [N.ATTR_GEN_AI_OPERATION_NAME]: "execute_tool",
      [N.ATTR_MCP_SESSION_ID]: conn.transport.sessionId,
      [N.ATTR_JSONRPC_REQUEST_ID]: requestIdOf(conn, "traced__echo"),
      [N.ATTR_NETWORK_TRANSPORT]: "tcp",
      [N.ATTR_MCP_PROTOCOL_VERSION]: LATEST_PROTOCOL_VERSION,
    });
    expect(server.attributes[N.ATTR_ERROR_TYPE]).toBeUndefined();

    const [attempt, ...moreAttempts] = childrenOf(server, N.SPAN_ATTEMPT);
    expect(moreAttempts).toEqual([]);
    expect(attempt?.attributes).toMatchObject({ ...tool("traced__echo"), [N.ATTR_ATTEMPT]: 1 });
    const client = only("tools/call echo");
    expect(client.kind).toBe(SpanKind.CLIENT);
    expect(client.parentSpanContext?.spanId).toBe(attempt?.spanContext().spanId);
    expect(client.spanContext().traceId).toBe(TRACE_ID);
    expect(client.attributes).toMatchObject({
      [N.ATTR_MCP_METHOD_NAME]: "tools/call",
      [N.ATTR_GEN_AI_TOOL_NAME]: "echo",
      [N.ATTR_UPSTREAM]: "traced",
      [N.ATTR_NETWORK_TRANSPORT]: "tcp",
      [N.ATTR_ATTEMPT]: 1,
    });

    // The upstream sees the CLIENT span as its parent, and not the client's progress token.
    const received = upstreamCalls("echo").at(-1)?.meta;
    expect(received?.traceparent).toBe(`00-${TRACE_ID}-${client.spanContext().spanId}-01`);
    expect(received?.progressToken).not.toBe(5);
  });

  it("takes the trace context from the HTTP traceparent header when _meta has none", async () => {
    const headerTrace = "0af7651916cd43dd8448eb211c80319c";
    const other = await connect({ traceparent: `00-${headerTrace}-b7ad6b7169203331-01` });
    try {
      await other.client.callTool({ name: "traced__echo", arguments: {} });
      const server = only("tools/call traced__echo");
      expect(server.spanContext().traceId).toBe(headerTrace);
      expect(server.attributes[N.ATTR_MCP_SESSION_ID]).toBe(other.transport.sessionId);
      expect(server.attributes[N.ATTR_MCP_SESSION_ID]).not.toBe(conn.transport.sessionId);
      const received = upstreamCalls("echo").at(-1)?.meta;
      expect(received?.traceparent).toMatch(new RegExp(`^00-${headerTrace}-`));
    } finally {
      await other.transport.terminateSession();
      await other.client.close();
    }
  });

  it("starts a new trace without any trace context, and still sends one upstream", async () => {
    await call("traced__echo");
    const server = only("tools/call traced__echo");
    expect(server.parentSpanContext).toBeUndefined();
    const client = only("tools/call echo");
    expect(client.spanContext().traceId).toBe(server.spanContext().traceId);
    expect(upstreamCalls("echo").at(-1)?.meta?.traceparent).toBe(
      `00-${client.spanContext().traceId}-${client.spanContext().spanId}-01`,
    );
  });

  it("counts the calls and measures both the server and the client operation", async () => {
    const ok = { ...tool("traced__echo"), [N.ATTR_OUTCOME]: "ok" };
    expect(await h.metrics.value(N.METRIC_CALLS, ok)).toBe(3);
    expect((await h.metrics.histogram(N.METRIC_CALL_DURATION, ok))?.count).toBe(3);
    // Payload sizes: each result is the text "echo"; each request is one POST body.
    const response = await h.metrics.histogram(N.METRIC_CALL_RESPONSE_SIZE, tool("traced__echo"));
    expect(response).toMatchObject({ count: 3, sum: 12 });
    const request = await h.metrics.histogram(N.METRIC_CALL_REQUEST_SIZE, tool("traced__echo"));
    expect(request?.count).toBe(3);
    expect(request?.sum).toBeGreaterThan(3 * '{"method":"tools/call"}'.length);
    const server = await h.metrics.histogram(N.METRIC_MCP_SERVER_OPERATION_DURATION, {
      [N.ATTR_GEN_AI_TOOL_NAME]: "traced__echo",
    });
    expect(server?.count).toBe(3);
    const client = await h.metrics.histogram(N.METRIC_MCP_CLIENT_OPERATION_DURATION, {
      [N.ATTR_GEN_AI_TOOL_NAME]: "echo",
      [N.ATTR_UPSTREAM]: "traced",
    });
    expect(client?.count).toBe(3);
    expect(h.telemetry.stats.get("traced__echo")).toMatchObject({ calls: 3, errors: 0, inFlight: 0 });
  });
});

describe("a retried call", () => {
  it("shows each attempt with its CLIENT span and the retry as an event, and counts the retry", async () => {
    const result = await call("traced__flaky", {}, { traceparent: TRACEPARENT });
    expect(result.isError).toBeUndefined();

    const server = only("tools/call traced__flaky");
    const attempts = childrenOf(server, N.SPAN_ATTEMPT);
    expect(attempts.map((s) => s.attributes[N.ATTR_ATTEMPT])).toEqual([1, 2]);
    expect(attempts.map((s) => s.status.code)).toEqual([SpanStatusCode.ERROR, SpanStatusCode.UNSET]);
    // The retry is decided after the first attempt ended: its event is on the call's span.
    const retry = server.events.find((e) => e.name === N.EVENT_RETRY);
    expect(retry?.attributes).toMatchObject({ [N.ATTR_ATTEMPT]: 1, [N.ATTR_ERROR_CODE]: "UpstreamError" });

    const clients = spans("tools/call flaky");
    expect(clients.map((s) => s.attributes[N.ATTR_ATTEMPT])).toEqual([1, 2]);
    expect(clients.map((s) => s.parentSpanContext?.spanId)).toEqual(
      attempts.map((s) => s.spanContext().spanId),
    );
    expect(clients[0]?.attributes[N.ATTR_ERROR_TYPE]).toBe("-32603");
    expect(clients[0]?.status.code).toBe(SpanStatusCode.ERROR);
    expect(clients[1]?.attributes[N.ATTR_ERROR_TYPE]).toBeUndefined();

    // Each attempt carries its own CLIENT span upstream, all in the client's trace.
    expect(upstreamCalls("flaky").map((c) => c.meta?.traceparent)).toEqual(
      clients.map((s) => `00-${TRACE_ID}-${s.spanContext().spanId}-01`),
    );

    expect(await h.metrics.value(N.METRIC_RETRIES, tool("traced__flaky"))).toBe(1);
    const calls = { ...tool("traced__flaky"), [N.ATTR_OUTCOME]: "ok" };
    expect(await h.metrics.value(N.METRIC_CALLS, calls)).toBe(1);
    // One client operation per attempt, the failed one with its JSON-RPC code as error.type.
    const clientOps = await h.metrics.points<Histogram>(N.METRIC_MCP_CLIENT_OPERATION_DURATION);
    const flakyOps = clientOps.filter((p) => p.attributes[N.ATTR_GEN_AI_TOOL_NAME] === "flaky");
    const countByError = flakyOps.map((p) => [p.attributes[N.ATTR_ERROR_TYPE] ?? "none", p.value.count]);
    expect(Object.fromEntries(countByError)).toEqual({ none: 1, "-32603": 1 });
  });
});

describe("calls that wait", () => {
  it("records a queue wait span under the attempt of the call that waited for a slot", async () => {
    // The first call holds the only slot until released, so the second surely waits in the queue.
    const pending = [call("traced__slow", { hold: "queue" }), call("traced__slow", { hold: "queue" })];
    await eventually(() =>
      gateway.pipelines.bulkheadStates().some((b) => b.inFlight === 1 && b.queued === 1),
    );
    await sleep(100);
    upstream.release("queue");
    const results = await Promise.all(pending);
    expect(results.map((r) => r.isError)).toEqual([undefined, undefined]);

    const wait = only(N.SPAN_QUEUE_WAIT);
    expect(wait.attributes[N.ATTR_SCOPE]).toBe('tool "traced__slow"');
    const attempt = spans(N.SPAN_ATTEMPT).find(
      (s) => s.spanContext().spanId === wait.parentSpanContext?.spanId,
    );
    const server = spans("tools/call traced__slow").find(
      (s) => s.spanContext().spanId === attempt?.parentSpanContext?.spanId,
    );
    expect(server?.kind).toBe(SpanKind.SERVER);
    // It waited for the other call, which held the slot for at least 100 ms.
    const waitedMs = (wait.duration[0] * 1e9 + wait.duration[1]) / 1e6;
    expect(waitedMs).toBeGreaterThanOrEqual(50);
    const queueWait = await h.metrics.histogram(N.METRIC_QUEUE_WAIT, tool("traced__slow"));
    expect(queueWait?.count).toBe(1);
    expect(queueWait?.sum).toBeGreaterThanOrEqual(0.05);
  });

  it("records a lock wait span for a call that waited for the same key, and none for another key", async () => {
    const before = upstreamCalls("write").length;
    // The first of each key holds its lock until released, so the second "/same" surely waits for it.
    const pending = [
      call("traced__write", { hold: "lock", path: "/same" }),
      call("traced__write", { hold: "lock", path: "/same" }),
      call("traced__write", { hold: "lock", path: "/other" }),
    ];
    await eventually(() => upstreamCalls("write").length === before + 2);
    await sleep(100);
    upstream.release("lock");
    const results = await Promise.all(pending);
    expect(results.map((r) => r.isError)).toEqual([undefined, undefined, undefined]);
    const wait = only(N.SPAN_LOCK_WAIT);
    expect(String(wait.attributes[N.ATTR_LOCK_KEY])).toContain("/same");
    const attempt = spans(N.SPAN_ATTEMPT).find(
      (s) => s.spanContext().spanId === wait.parentSpanContext?.spanId,
    );
    expect(attempt?.attributes[N.ATTR_TOOL]).toBe("traced__write");
    const lockWait = await h.metrics.histogram(N.METRIC_LOCK_WAIT, tool("traced__write"));
    expect(lockWait?.count).toBe(3);
    expect(lockWait?.max).toBeGreaterThanOrEqual(0.05);
  });
});

describe("a call that times out", () => {
  it("returns an isError result that the SERVER span marks, cancels upstream and counts the timeout", async () => {
    const result = await call("traced__hang");
    expect(result.isError).toBe(true);

    const server = only("tools/call traced__hang");
    expect(server.attributes).toMatchObject({
      [N.ATTR_ERROR_TYPE]: "tool_error",
      [N.ATTR_ERROR_CODE]: "UpstreamTimeout",
    });
    expect(server.status.code).toBe(SpanStatusCode.ERROR);
    const [attempt] = childrenOf(server, N.SPAN_ATTEMPT);
    expect(attempt?.attributes[N.ATTR_ERROR_CODE]).toBe("UpstreamTimeout");
    expect(attempt?.events.map((e) => e.name)).toContain(N.EVENT_TIMEOUT);
    const client = only("tools/call hang");
    expect(client.status.code).toBe(SpanStatusCode.ERROR);
    expect(client.attributes[N.ATTR_ERROR_TYPE]).toBeDefined();
    await eventually(() => upstream.cancelled.includes("hang"));

    const timeouts = { ...tool("traced__hang"), [N.ATTR_SCOPE]: "attempt" };
    expect(await h.metrics.value(N.METRIC_TIMEOUTS, timeouts)).toBe(1);
    const errors = {
      ...tool("traced__hang"),
      [N.ATTR_ERROR_CODE]: "UpstreamTimeout",
      [N.ATTR_ERROR_CLASS]: "transient",
    };
    expect(await h.metrics.value(N.METRIC_CALL_ERRORS, errors)).toBe(1);
    const serverOps = await h.metrics.histogram(N.METRIC_MCP_SERVER_OPERATION_DURATION, {
      [N.ATTR_GEN_AI_TOOL_NAME]: "traced__hang",
      [N.ATTR_ERROR_TYPE]: "tool_error",
    });
    expect(serverOps?.count).toBe(1);
    expect(h.telemetry.stats.get("traced__hang")).toMatchObject({ calls: 1, errors: 1, inFlight: 0 });
  });
});

describe("a breaker that opens", () => {
  it("exports the open state, counts the rejection and records it on the rejected call's attempt", async () => {
    // The upstream's own JSON-RPC error passes through as a JSON-RPC error.
    await expect(call("traced__boom")).rejects.toMatchObject({ code: -32603 });
    await expect(call("traced__boom")).rejects.toMatchObject({ code: -32603 });
    const sentUpstream = upstreamCalls("boom").length;
    h.spans.reset();

    const rejected = await call("traced__boom");
    expect(rejected.isError).toBe(true);
    expect((rejected._meta?.["toolgate/error"] as { code?: string })?.code).toBe("CircuitOpen");
    expect(upstreamCalls("boom")).toHaveLength(sentUpstream); // failed fast: the upstream saw nothing
    expect(spans("tools/call boom")).toEqual([]);
    const server = only("tools/call traced__boom");
    expect(server.attributes[N.ATTR_ERROR_CODE]).toBe("CircuitOpen");
    const [attempt] = childrenOf(server, N.SPAN_ATTEMPT);
    expect(attempt?.events.map((e) => e.name)).toContain(N.EVENT_BREAKER_REJECTED);

    const breaker = { [N.ATTR_BREAKER]: "tool:traced__boom" };
    expect(await h.metrics.value(N.METRIC_BREAKER_STATE, breaker)).toBe(2);
    const opened = { ...breaker, [N.ATTR_BREAKER_STATE]: "open" };
    expect(await h.metrics.value(N.METRIC_BREAKER_TRANSITIONS, opened)).toBe(1);
    expect(await h.metrics.value(N.METRIC_BREAKER_REJECTIONS, breaker)).toBe(1);
    const failed = { ...tool("traced__boom"), [N.ATTR_ERROR_CODE]: "UpstreamError" };
    expect(await h.metrics.value(N.METRIC_CALL_ERRORS, failed)).toBe(2);
    const circuitOpen = { ...tool("traced__boom"), [N.ATTR_ERROR_CODE]: "CircuitOpen" };
    expect(await h.metrics.value(N.METRIC_CALL_ERRORS, circuitOpen)).toBe(1);
  });

  it("shows on the gateway's /status and /metrics", async () => {
    const report = (await (await fetch(`${base}/status`)).json()) as StatusReport;
    expect(report.breakers).toContainEqual(
      expect.objectContaining({ id: "tool:traced__boom", state: "open" }),
    );
    expect(report.tools.find((t) => t.name === "traced__boom")).toMatchObject({ calls: 3, errors: 3 });
    expect(report.upstreams).toEqual([expect.objectContaining({ name: "traced", state: "ready" })]);

    const metrics = await (await fetch(`${base}/metrics`)).text();
    expect(metrics).toContain('toolgate_breaker_state{toolgate_breaker="tool:traced__boom"} 2');
    expect(metrics).toContain('toolgate_upstream_up{toolgate_upstream="traced"} 1');
    expect(metrics).toMatch(/toolgate_calls_total\{[^}]*toolgate_tool="traced__echo"[^}]*\} 3/);
  });
});

describe("after every call", () => {
  it("has nothing in flight or queued, and one session open", async () => {
    const inFlight = await h.metrics.points(N.METRIC_CALLS_IN_FLIGHT);
    expect(inFlight.length).toBeGreaterThan(0);
    for (const point of inFlight) expect(point.value).toBe(0);
    for (const point of await h.metrics.points(N.METRIC_CALLS_QUEUED)) expect(point.value).toBe(0);
    const tcp = { [N.ATTR_NETWORK_TRANSPORT]: "tcp" };
    await eventually(async () => (await h.metrics.value(N.METRIC_SESSIONS_OPEN, tcp)) === 1);
    expect((await h.metrics.histogram(N.METRIC_MCP_SERVER_SESSION_DURATION, tcp))?.count).toBe(1);
  });
});
