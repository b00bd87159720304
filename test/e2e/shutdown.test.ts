/**
 * Graceful shutdown of the gateway binary: SIGTERM with calls in flight. New sessions are refused, calls that
 * finish within gateway.drainTimeoutMs are answered, the rest end with ShuttingDown, no stdio upstream
 * process outlives the gateway, and the exit code is 0.
 */
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, expect, it } from "vitest";
import { alive } from "../../src/upstreams/process-tree.ts";
import {
  connectClient,
  eventually,
  FAULT_SERVER,
  type GatewayProcess,
  NODE,
  spawnGateway,
  textOf,
} from "../helpers/gateway.ts";
import { BASE_HEADERS, initializeBody, rawPost } from "../helpers/raw-mcp.ts";

/**
 * The quick call needs QUICK_MS upstream and the drain allows twenty times that, so a loaded machine cannot
 * make it miss the drain; the hanging call never ends on its own and must be cancelled when the drain ends.
 */
const QUICK_MS = 300;
const DRAIN_MS = 6_000;

let gateway: GatewayProcess | undefined;
let client: Client | undefined;

afterAll(async () => {
  await client?.close().catch(() => {});
  await gateway?.stop("SIGKILL");
});

it("drains calls in flight on SIGTERM, cancels the rest with ShuttingDown, stops upstreams and exits 0", async () => {
  gateway = await spawnGateway({
    gateway: { drainTimeoutMs: DRAIN_MS },
    mcpServers: { faults: { command: NODE, args: [FAULT_SERVER, "--name", "faults"] } },
    upstreams: { faults: { policies: { retry: { maxAttempts: 1 } } } },
  });
  client = await connectClient("http", gateway);
  await eventually(async () => (await client?.listTools())?.tools.some((t) => t.name === "faults__hang"));
  const { pid } = JSON.parse(textOf(await client.callTool({ name: "faults__stats", arguments: {} })));
  expect(alive(pid)).toBe(true);

  const quick = client.callTool({ name: "faults__slow", arguments: { ms: QUICK_MS } });
  const stuck = client.callTool({ name: "faults__hang", arguments: {} });
  await eventually(async () => {
    const stats = JSON.parse(textOf(await client?.callTool({ name: "faults__stats", arguments: {} })));
    return stats.inFlight === 2;
  });

  const exited = gateway.stop("SIGTERM");
  await eventually(() => gateway?.logs.some((l) => l.msg === "shutting down"));
  const refused = await rawPost(gateway.url, initializeBody(), BASE_HEADERS).then(
    (r) => r.status,
    () => "connection refused",
  );
  expect([503, "connection refused"]).toContain(refused);

  expect(textOf(await quick)).toBe(`slept ${QUICK_MS} ms`);
  const cancelled = await stuck;
  expect(cancelled.isError).toBe(true);
  expect(cancelled._meta?.["toolgate/error"]).toMatchObject({
    code: "ShuttingDown",
    upstream: "faults",
    tool: "faults__hang",
  });
  expect(textOf(cancelled)).toContain(`${DRAIN_MS} ms drain`);

  expect(await exited).toBe(0);
  expect(gateway.logs.some((l) => l.msg === "drain timeout: cancelling calls still in flight")).toBe(true);
  await eventually(() => !alive(pid));
});
