/**
 * A shutdown's drain: calls already in flight finish; a new request on a session that is still open gets
 * ShuttingDown at once (a JSON-RPC error the client can act on by retrying elsewhere) and never starts.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterAll, beforeAll, expect, it } from "vitest";
import type { Upstream } from "../../src/upstreams/upstream.ts";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import {
  connectClient,
  eventually,
  type InProcessGateway,
  startGateway,
  textOf,
} from "../helpers/gateway.ts";

let upstreamServer: RunningFaultServer;
let gw: InProcessGateway;
let client: Client;

beforeAll(async () => {
  // In process, so the test can release the call it holds there whenever it has seen the drain's refusals.
  upstreamServer = await startFaultServer({ transport: "http", name: "faults" });
  gw = await startGateway({
    gateway: { drainTimeoutMs: 60_000 },
    mcpServers: { faults: { type: "http", url: upstreamServer.url } },
  });
  client = await connectClient("http", gw);
  await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "faults__slow"));
});

afterAll(async () => {
  await client?.close().catch(() => {});
  await gw?.stop();
  await upstreamServer?.close();
});

it("finishes the call in flight and refuses new requests on the same session with ShuttingDown", async () => {
  const upstream = gw.gateway.registry.get("faults") as Upstream | undefined;
  const inFlight = client.callTool({ name: "faults__slow", arguments: { ms: 0, hold: "drain" } });
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

  upstreamServer.release("drain");
  expect(textOf(await inFlight)).toBe("slept 0 ms");
  await stopped;
});
