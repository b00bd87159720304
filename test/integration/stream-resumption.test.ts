/**
 * SEP-1699 through toolgate: an upstream that closes a call's response stream mid-call and expects the client
 * to resume it with GET + Last-Event-ID (the conformance fixture's `test_reconnection`, on an event store).
 */
import { afterEach, describe, expect, it } from "vitest";
import { startConformanceServer } from "../fixtures/conformance-server.ts";
import { connectClient, eventually, startGateway, textOf } from "../helpers/gateway.ts";

const cleanup: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const stop of cleanup.splice(0).reverse()) await stop().catch(() => {});
});

describe("cut response streams", () => {
  it("resumes a stream the upstream closed mid-call, and the call completes", async () => {
    const upstream = await startConformanceServer();
    cleanup.push(() => upstream.close());
    const gw = await startGateway({
      mcpServers: { conf: { type: "http", url: upstream.url } },
      upstreams: { conf: { prefix: "" } },
    });
    cleanup.push(() => gw.stop());
    await eventually(() => gw.gateway.registry.get("conf")?.state === "ready", 15_000);
    const client = await connectClient("http", gw);
    cleanup.push(() => client.close());

    const result = await client.callTool({ name: "test_reconnection", arguments: {} });
    expect(textOf(result)).toBe("Reconnection test completed successfully");
    // The connection survived: no reconnect of the upstream was needed.
    expect(gw.gateway.registry.get("conf")?.status()).toMatchObject({ state: "ready", restarts: 0 });
  });
});
