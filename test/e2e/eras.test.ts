/**
 * Both protocol generations on one `/mcp` endpoint of the gateway binary: the v2 SDK client negotiating
 * 2026-07-28 (it probes with server/discover and would fall back to initialize) and the v1 SDK client on
 * 2025-11-25 sessions, each listing, calling with progress, and answering an elicitation, through toolgate
 * to the conformance fixture (a 2025-11-25 server over stdio). For the modern client the fixture's
 * elicitation/create becomes an input-required round that the v2 client fulfils and retries.
 */

import { join } from "node:path";
import {
  Client as ModernClient,
  StreamableHTTPClientTransport as ModernTransport,
} from "@modelcontextprotocol/client";
import { StdioClientTransport as ModernStdioTransport } from "@modelcontextprotocol/client/stdio";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { createParser } from "eventsource-parser";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  eventually,
  type GatewayProcess,
  NODE,
  ROOT,
  spawnGateway,
  textOf,
  writeConfig,
} from "../helpers/gateway.ts";

let gw: GatewayProcess;

beforeAll(async () => {
  gw = await spawnGateway({
    mcpServers: { conformance: { command: NODE, args: ["test/fixtures/conformance-server.ts"], cwd: ROOT } },
    upstreams: { conformance: { prefix: "" } },
  });
  // The upstream connects in the background: wait until it is ready.
  await eventually(async () => (await fetch(`${gw.base}/readyz`)).ok);
}, 30_000);

afterAll(async () => {
  await gw?.stop();
});

describe("a 2026-07-28 client (SDK v2, version negotiation auto)", () => {
  let client: ModernClient;

  beforeAll(async () => {
    client = new ModernClient(
      { name: "modern-e2e", version: "1.0.0" },
      { versionNegotiation: { mode: "auto" }, capabilities: { elicitation: {} } },
    );
    client.setRequestHandler("elicitation/create", async () => ({
      action: "accept",
      content: { name: "Alice" },
    }));
    await client.connect(new ModernTransport(new URL(gw.url)));
  });

  afterAll(async () => {
    await client?.close();
  });

  it("lands on the modern era after probing", () => {
    expect(client.getProtocolEra()).toBe("modern");
    expect(client.getDiscoverResult()?.supportedVersions).toContain("2026-07-28");
  });

  it("lists the tools", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain("test_tool_with_progress");
  });

  it("calls a tool and receives its progress", async () => {
    const progress: number[] = [];
    const result = await client.callTool(
      { name: "test_tool_with_progress", arguments: {} },
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(textOf(result)).toContain("progress");
    expect(progress).toEqual([0, 50, 100]);
  });

  it("answers the upstream's elicitation through an input-required round", async () => {
    const result = await client.callTool({ name: "test_input_required_result_elicitation", arguments: {} });
    expect(textOf(result)).toBe("Hello, Alice!");
  });
});

describe("subscriptions/listen through toolgate", () => {
  const META = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientCapabilities": {},
  };
  const post = (id: number, method: string, params: Record<string, unknown>, signal?: AbortSignal) =>
    fetch(gw.url, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": method,
        ...(typeof params.name === "string" && { "mcp-name": params.name }),
      },
      body: JSON.stringify({ jsonrpc: "2.0", id, method, params: { ...params, _meta: META } }),
      ...(signal && { signal }),
    });

  it("acknowledges first, then carries resource updates and list changes tagged with its id", async () => {
    const stop = new AbortController();
    const stream = await post(
      41,
      "subscriptions/listen",
      { notifications: { toolsListChanged: true, resourceSubscriptions: ["test://watched-resource"] } },
      stop.signal,
    );
    const seen: Array<Record<string, unknown>> = [];
    const parser = createParser({ onEvent: (e) => seen.push(JSON.parse(e.data) as Record<string, unknown>) });
    const reader = (stream.body as ReadableStream<Uint8Array>).getReader();
    const decoder = new TextDecoder();
    const until = async (check: () => boolean) => {
      while (!check()) {
        const { value, done } = await reader.read();
        if (done) throw new Error("listen stream ended");
        parser.feed(decoder.decode(value, { stream: true }));
      }
    };
    await until(() => seen.length > 0);
    expect(seen[0]).toMatchObject({
      method: "notifications/subscriptions/acknowledged",
      params: {
        _meta: { "io.modelcontextprotocol/subscriptionId": 41 },
        notifications: { toolsListChanged: true, resourceSubscriptions: ["test://watched-resource"] },
      },
    });
    await (await post(42, "tools/call", { name: "test_touch_watched_resource", arguments: {} })).text();
    await (await post(43, "tools/call", { name: "test_trigger_tool_change", arguments: {} })).text();
    const methods = () => seen.map((m) => m.method);
    await until(
      () =>
        methods().includes("notifications/resources/updated") &&
        methods().includes("notifications/tools/list_changed"),
    );
    for (const message of seen) {
      expect((message.params as { _meta: Record<string, unknown> })._meta).toMatchObject({
        "io.modelcontextprotocol/subscriptionId": 41,
      });
    }
    // Nothing the client did not ask for (prompts list changes) arrived.
    expect(methods()).not.toContain("notifications/prompts/list_changed");
    stop.abort();
  });
});

describe("a 2025-11-25 client (SDK v1) on the same endpoint", () => {
  let client: Client;

  beforeAll(async () => {
    client = new Client({ name: "legacy-e2e", version: "1.0.0" }, { capabilities: { elicitation: {} } });
    client.setRequestHandler(ElicitRequestSchema, async () => ({
      action: "accept",
      content: { name: "Bob" },
    }));
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
  });

  afterAll(async () => {
    await client?.close();
  });

  it("has a session and the 2025-11-25 protocol", () => {
    expect(client.getServerVersion()?.name).toBe("toolgate");
  });

  it("lists, calls with progress and answers elicitation as a server→client request", async () => {
    const { tools } = await client.listTools();
    expect(tools.map((t) => t.name)).toContain("test_tool_with_progress");
    const progress: number[] = [];
    const result = await client.callTool({ name: "test_tool_with_progress", arguments: {} }, undefined, {
      onprogress: (p) => progress.push(p.progress),
    });
    expect(textOf(result)).toContain("progress");
    expect(progress).toEqual([0, 50, 100]);
    const elicited = await client.callTool({ name: "test_input_required_result_elicitation", arguments: {} });
    expect(textOf(elicited)).toBe("Hello, Bob!");
  });
});

describe("a 2026-07-28 client over stdio (`toolgate serve --stdio`)", () => {
  it("probes, lands on the modern era, and calls a tool", async () => {
    const configFile = await writeConfig({
      mcpServers: {
        conformance: { command: NODE, args: ["test/fixtures/conformance-server.ts"], cwd: ROOT },
      },
      upstreams: { conformance: { prefix: "" } },
    });
    const client = new ModernClient(
      { name: "modern-stdio-e2e", version: "1.0.0" },
      { versionNegotiation: { mode: "auto" } },
    );
    await client.connect(
      new ModernStdioTransport({
        command: NODE,
        args: [join(ROOT, "src/main.ts"), "serve", "--stdio", "--config", configFile],
        cwd: ROOT,
        stderr: "ignore",
      }),
    );
    try {
      expect(client.getProtocolEra()).toBe("modern");
      await eventually(async () =>
        (await client.listTools()).tools.some((t) => t.name === "test_simple_text"),
      );
      const result = await client.callTool({ name: "test_simple_text", arguments: {} });
      expect(textOf(result)).toContain("simple text");
    } finally {
      await client.close();
    }
  }, 60_000);
});
