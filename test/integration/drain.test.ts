/**
 * A shutdown's drain: calls already in flight finish; a new request on a session that is still open gets
 * ShuttingDown at once (a JSON-RPC error the client can act on by retrying elsewhere) and never starts.
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
    gateway: { drainTimeoutMs: 30_000 },
    mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } },
  });
  client = await connectClient("http", gw);
  await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "faults__slow"));
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await gw?.stop();
});

it("finishes the call in flight and refuses new requests on the same session with ShuttingDown", async () => {
  const upstream = gw.gateway.registry.get("faults");
  const inFlight = client.callTool({ name: "faults__slow", arguments: { ms: 2_000 } });
  await eventually(() => (upstream?.pendingRequests() ?? 0) > 0, 30_000, 10);

  const stopped = gw.gateway.stop();
  const refused = await client.callTool({ name: "faults__echo", arguments: { text: "new" } }).catch((e) => e);
  expect(refused).toBeInstanceOf(McpError);
  expect(refused).toMatchObject({
    code: -32013,
    message: expect.stringContaining("ShuttingDown"),
    data: { toolgate: { code: "ShuttingDown", class: "overload" } },
  });
  const read = await client.readResource({ uri: "fixture://static" }).catch((e) => e);
  expect(read).toMatchObject({ code: -32013, data: { toolgate: { code: "ShuttingDown" } } });

  expect(textOf(await inFlight)).toBe("slept 2000 ms");
  await stopped;
});
