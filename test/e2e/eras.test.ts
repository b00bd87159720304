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
