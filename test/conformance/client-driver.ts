/**
 * The client under test for `conformance client` (the suite appends the scenario server's URL and sets
 * MCP_CONFORMANCE_SCENARIO / MCP_CONFORMANCE_CONTEXT): toolgate, with the scenario server as its one upstream
 * (no name prefix, protocol "auto"), driven by the official v1 SDK client through toolgate's HTTP endpoint.
 * What it drives per scenario mirrors the suite's reference client; the upstream side of every request is
 * toolgate's own.
 *
 *   node test/conformance/client-driver.ts http://localhost:PORT/mcp
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { ElicitRequestSchema } from "@modelcontextprotocol/sdk/types.js";
import { connectClient, startGateway } from "../helpers/gateway.ts";

interface ToolCall {
  name: string;
  arguments?: Record<string, unknown>;
}

async function main(): Promise<number> {
  const url = process.argv.at(-1);
  if (!url?.startsWith("http")) throw new Error("usage: client-driver.ts <server-url>");
  const scenario = process.env.MCP_CONFORMANCE_SCENARIO ?? "";
  const context = JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT ?? "{}") as { toolCalls?: ToolCall[] };

  const gw = await startGateway({
    mcpServers: { target: { type: "http", url } },
    upstreams: { target: { prefix: "", reconnect: { initialDelayMs: 100, maxDelayMs: 500 } } },
  });
  try {
    const upstream = gw.gateway.registry.get("target");
    if (!(await upstream?.whenReady(20_000))) {
      process.stderr.write(`upstream not ready: ${upstream?.status().lastError}\n`);
      return 1;
    }
    const client = await connectClient("http", gw, {
      capabilities: { elicitation: { form: { applyDefaults: true } } },
    });
    client.setRequestHandler(ElicitRequestSchema, async (request) => {
      const properties = (request.params as { requestedSchema?: { properties?: object } }).requestedSchema
        ?.properties;
      // Confirm what asks for confirmation; leave the rest to the schema's defaults.
      const content = properties && "confirmed" in properties ? { confirmed: true } : {};
      return { action: "accept", content };
    });
    try {
      await drive(client, scenario, context);
    } finally {
      await client.close();
    }
    return 0;
  } finally {
    await gw.stop();
  }
}

async function drive(client: Client, scenario: string, context: { toolCalls?: ToolCall[] }): Promise<void> {
  const { tools } = await client.listTools();
  const call = async (name: string, args: Record<string, unknown> = {}) => {
    try {
      const result = await client.callTool({ name, arguments: args });
      if (result.isError) process.stderr.write(`${name}: isError ${JSON.stringify(result.content)}\n`);
    } catch (err) {
      process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  };
  if (context.toolCalls) {
    for (const tool of context.toolCalls) await call(tool.name, tool.arguments);
    return;
  }
  switch (scenario) {
    case "json-schema-ref-no-deref":
      return;
    case "http-standard-headers": {
      for (const tool of tools) await call(tool.name);
      const resources = await client.listResources().catch(() => ({ resources: [] }));
      for (const r of resources.resources) await client.readResource({ uri: r.uri }).catch(() => {});
      const prompts = await client.listPrompts().catch(() => ({ prompts: [] }));
      for (const p of prompts.prompts) await client.getPrompt({ name: p.name }).catch(() => {});
      return;
    }
    case "http-invalid-tool-headers":
      // toolgate's catalog holds only the tools with valid x-mcp-header declarations.
      for (const tool of tools) await call(tool.name, { region: "us-west1" });
      return;
    case "sep-2322-client-request-state":
      for (const tool of tools) await call(tool.name);
      return;
    case "elicitation-sep1034-client-defaults":
      await call("test_client_elicitation_defaults");
      return;
    default: {
      const [first] = tools;
      if (first) await call(first.name, { a: 2, b: 3 });
    }
  }
}

process.exitCode = await main().catch((err: unknown) => {
  process.stderr.write(`client-driver: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  return 1;
});
