/**
 * Errors as a client sees them through the gateway, against the real fault server over stdio: an
 * upstream's own JSON-RPC error passes through with its code and message and names upstream, tool and
 * policy; a retried call lists its attempts; a timed-out retried call is UpstreamTimeout.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import {
  connectClient,
  eventually,
  FAULT_SERVER,
  type InProcessGateway,
  NODE,
  startGateway,
  textOf,
} from "../helpers/gateway.ts";

let gw: InProcessGateway;
let client: Client;

beforeAll(async () => {
  gw = await startGateway({
    mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } },
    defaults: {
      breaker: { enabled: false },
      retry: { maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
    },
    upstreams: {
      faults: {
        tools: { hang: { idempotent: true, timeout: { attemptMs: 200, callMs: 500 } } },
      },
    },
  });
  client = await connectClient("http", gw);
  await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "faults__fail"));
});

afterAll(async () => {
  await client?.close();
  await gw?.stop();
});

it("passes an upstream's JSON-RPC error through with its code and message, naming upstream, tool and policy", async () => {
  const err = await client
    .callTool({ name: "faults__fail_unsafe", arguments: { times: 1, key: "passthrough" } })
    .catch((e: unknown) => e);
  expect(err).toBeInstanceOf(McpError);
  expect(err).toMatchObject({
    code: -32603,
    message: "MCP error -32603: fail_unsafe: injected failure 1",
    data: {
      toolgate: {
        code: "UpstreamError",
        upstream: "faults",
        tool: "faults__fail_unsafe",
        policy: "upstream",
      },
    },
  });
});

it("lists every attempt of a retried call in RetriesExhausted", async () => {
  const result = await client.callTool({
    name: "faults__fail_idempotent",
    arguments: { times: 100, key: "exhausted" },
  });
  expect(result.isError).toBe(true);
  const error = result._meta?.["toolgate/error"] as Record<string, unknown>;
  expect(error).toMatchObject({
    code: "RetriesExhausted",
    upstream: "faults",
    tool: "faults__fail_idempotent",
    policy: "retry",
  });
  expect(error.attempts).toEqual(
    [1, 2, 3].map((attempt) => expect.objectContaining({ attempt, code: "UpstreamError" })),
  );
  expect(textOf(result)).toContain("3 attempts failed");
});

it("reports a retried call that keeps timing out as UpstreamTimeout", async () => {
  const result = await client.callTool({ name: "faults__hang", arguments: {} });
  expect(result.isError).toBe(true);
  expect(result._meta?.["toolgate/error"]).toMatchObject({
    code: "UpstreamTimeout",
    upstream: "faults",
    tool: "faults__hang",
  });
});
