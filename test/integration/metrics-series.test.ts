/**
 * The series a real gateway exports: every catalog tool, upstream and breaker has its series at zero before
 * the first call (so rate()/increase() see the first event and the breaker panel has data), and names a
 * client makes up never become label values. HTTP requests refused before MCP takes them count by status.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { connectClient, type InProcessGateway, startGateway } from "../helpers/gateway.ts";
import { BASE_HEADERS, initializeBody, rawPost } from "../helpers/raw-mcp.ts";
import { type Family, parsePrometheusText } from "../unit/telemetry/prometheus-text.ts";

let upstream: RunningFaultServer;
let gw: InProcessGateway;
let client: Client;

async function scrape(): Promise<Map<string, Family>> {
  const res = await fetch(`${gw.base}/metrics`);
  expect(res.status).toBe(200);
  return parsePrometheusText(await res.text());
}

function value(families: Map<string, Family>, family: string, labels: Record<string, string>) {
  return families
    .get(family)
    ?.samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels[k] === v))?.value;
}

beforeAll(async () => {
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  gw = await startGateway({
    mcpServers: {
      faults: { type: "http", url: upstream.url },
      // Nothing listens on port 1: always down.
      down: { type: "http", url: "http://127.0.0.1:1/mcp" },
    },
  });
  client = await connectClient("http", gw);
  // Tools appear once the upstream is connected; list until they do.
  for (let i = 0; i < 200; i++) {
    if ((await client.listTools()).tools.length > 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
});

afterAll(async () => {
  await client?.close();
  await gw?.stop();
  await upstream?.close();
});

describe("series at zero when a tool enters the catalog", () => {
  it("has calls, queue errors, in-flight, queued, restarts and the breaker state before any call", async () => {
    const m = await scrape();
    const tool = { toolgate_tool: "faults__echo", toolgate_upstream: "faults" };
    for (const outcome of ["ok", "tool_error", "error"]) {
      expect(value(m, "toolgate_calls_total", { ...tool, toolgate_outcome: outcome }), outcome).toBe(0);
    }
    expect(value(m, "toolgate_call_errors_total", { ...tool, toolgate_error_code: "QueueFull" })).toBe(0);
    expect(value(m, "toolgate_call_errors_total", { ...tool, toolgate_error_code: "QueueTimeout" })).toBe(0);
    expect(value(m, "toolgate_calls_in_flight", tool)).toBe(0);
    expect(value(m, "toolgate_calls_queued", tool)).toBe(0);
    expect(value(m, "toolgate_upstream_restarts_total", { toolgate_upstream: "faults" })).toBe(0);
    expect(value(m, "toolgate_breaker_state", { toolgate_breaker: "upstream:faults" })).toBe(0);
    expect(
      value(m, "toolgate_breaker_transitions_total", {
        toolgate_breaker: "upstream:faults",
        toolgate_breaker_state: "open",
      }),
    ).toBe(0);
  });
});

describe("MCP operation histograms", () => {
  it("cover every operation on both sides, with no resource URI as a label", async () => {
    await client.listTools();
    await client.listPrompts();
    await client.getPrompt({ name: "faults__greet", arguments: { name: "x" } });
    await client.listResources();
    await client.readResource({ uri: "fixture://static" });
    const m = await scrape();
    const methods = (family: string) =>
      new Set(
        m
          .get(family)
          ?.samples.filter((s) => s.name.endsWith("_count"))
          .map((s) => s.labels.mcp_method_name),
      );
    const server = methods("mcp_server_operation_duration_seconds");
    for (const method of ["tools/list", "prompts/list", "prompts/get", "resources/list", "resources/read"]) {
      expect(server.has(method), method).toBe(true);
    }
    const upstreamSide = methods("mcp_client_operation_duration_seconds");
    for (const method of ["prompts/get", "resources/read"])
      expect(upstreamSide.has(method), method).toBe(true);
    for (const family of ["mcp_server_operation_duration_seconds", "mcp_client_operation_duration_seconds"]) {
      expect(m.get(family)?.samples.some((s) => "mcp_resource_uri" in s.labels)).toBe(false);
    }
  });
});

describe("names a client makes up", () => {
  it("count under _unknown and add no series", async () => {
    await client.callTool({ name: "faults__echo", arguments: { text: "hi" } });
    const before = await scrape();
    for (let i = 0; i < 40; i++) {
      await client.callTool({ name: `made_up_${i}`, arguments: {} }).catch(() => undefined);
    }
    await client.request({ method: "no/such/method", params: {} }, {} as never).catch(() => undefined);
    const after = await scrape();
    const toolNames = new Set(
      after.get("mcp_server_operation_duration_seconds")?.samples.map((s) => s.labels.gen_ai_tool_name),
    );
    toolNames.delete(undefined);
    expect([...toolNames].sort()).toEqual(["_unknown", "faults__echo"]);
    const methods = new Set(
      after.get("mcp_server_operation_duration_seconds")?.samples.map((s) => s.labels.mcp_method_name),
    );
    expect(
      [...methods].filter(
        (m) => m?.includes("/") && !m.startsWith("tools/") && !m.startsWith("notifications"),
      ),
    ).not.toContain("no/such/method");
    expect(methods.has("_OTHER")).toBe(true);
    const unknownCount = after
      .get("mcp_server_operation_duration_seconds")
      ?.samples.find((s) => s.name.endsWith("_count") && s.labels.gen_ai_tool_name === "_unknown");
    expect(unknownCount?.value).toBe(40);
    // The gateway's own call counters count them too, under the same one label.
    const unknown = { toolgate_tool: "_unknown", toolgate_upstream: "" };
    expect(value(after, "toolgate_calls_total", { ...unknown, toolgate_outcome: "error" })).toBe(40);
    expect(
      value(after, "toolgate_call_errors_total", {
        ...unknown,
        toolgate_error_code: "ToolNotFound",
        toolgate_error_class: "client",
      }),
    ).toBe(40);
    // Runtime families grow with what the process does meanwhile (a first major GC adds its series): not counted.
    const lines = (m: Map<string, Family>) =>
      [...m]
        .filter(([name]) => !/^(v8js|nodejs|process)_/.test(name))
        .reduce((n, [, f]) => n + f.samples.length, 0);
    // 40 made-up names add one set of series (the _unknown and _OTHER histograms, toolgate's _unknown call
    // series: 74 lines here), not one set per name.
    expect(lines(after) - lines(before)).toBeLessThan(120);
  });
});

describe("calls of an upstream that is down", () => {
  it("count as UpstreamUnavailable errors of that upstream, under one tool label", async () => {
    const before = await scrape();
    const labels = {
      toolgate_tool: "_unknown",
      toolgate_upstream: "down",
      toolgate_error_code: "UpstreamUnavailable",
      toolgate_error_class: "transient",
    };
    const counted = value(before, "toolgate_call_errors_total", labels) ?? 0;
    for (const name of ["down__a", "down__b"]) {
      const result = await client.callTool({ name, arguments: {} });
      expect(result.isError).toBe(true);
    }
    expect(value(await scrape(), "toolgate_call_errors_total", labels)).toBe(counted + 2);
  });
});

describe("HTTP requests refused before MCP takes them", () => {
  it("count by status, on /mcp and /ws, and not the requests MCP answers", async () => {
    const refused = (m: Map<string, Family>, status: string) =>
      value(m, "toolgate_http_refused_total", { http_response_status_code: status }) ?? 0;
    const before = await scrape();
    const init = initializeBody();
    const post = (headers: Record<string, string>, body = init) =>
      rawPost(gw.url, body, { ...BASE_HEADERS, ...headers });
    expect((await post({ "content-type": "text/plain" })).status).toBe(415);
    expect((await post({}, "{not json")).status).toBe(400);
    expect((await post({ origin: "https://evil.example" })).status).toBe(403);
    expect((await post({ "mcp-session-id": "no-such-session" })).status).toBe(404);
    expect((await post({ accept: "application/json" })).status).toBe(406);
    const upgrade = await new Promise<number | undefined>((resolve) => {
      const ws = new WebSocket(gw.wsUrl, "mcp", { origin: "https://evil.example" });
      ws.once("unexpected-response", (_req, res) => resolve(res.statusCode));
      ws.once("open", () => resolve(undefined));
      ws.once("error", () => {});
    });
    expect(upgrade).toBe(403);
    // Answered by MCP, not refused: a JSON-RPC error about a tool.
    await client.callTool({ name: "made_up", arguments: {} }).catch(() => undefined);
    const after = await scrape();
    for (const [status, added] of Object.entries({ "400": 1, "403": 2, "404": 1, "406": 1, "415": 1 })) {
      expect(refused(after, status) - refused(before, status), `status ${status}`).toBe(added);
    }
    expect(refused(after, "200")).toBe(0);
  });
});
