/** A draining gateway says it is not ready, so a load balancer stops sending it work during a rolling update. */
import { describe, expect, it } from "vitest";
import { connectClient, eventually, FAULT_SERVER, NODE, startGateway, textOf } from "../helpers/gateway.ts";

describe("readiness while draining", () => {
  it("answers /readyz 503 once SIGTERM-style draining starts, while calls in flight finish", async () => {
    const gw = await startGateway({
      gateway: { drainTimeoutMs: 10_000 },
      mcpServers: { f: { command: NODE, args: [FAULT_SERVER, "--transport", "stdio"] } },
      security: { pinning: { mode: "off" } },
    });
    const client = await connectClient("http", gw);
    try {
      await eventually(async () => (await fetch(`${gw.base}/readyz`)).status === 200);
      const call = client.callTool({ name: "f__slow", arguments: { ms: 1_500 } });
      await eventually(async () => {
        const stats = await client.callTool({ name: "f__stats", arguments: {} });
        return (JSON.parse(textOf(stats)) as { inFlight: number }).inFlight === 1;
      });
      const stopping = gw.stop();
      expect((await fetch(`${gw.base}/readyz`)).status).toBe(503);
      expect((await call).isError).toBeFalsy();
      await stopping;
    } finally {
      await client.close().catch(() => {});
    }
  });
});
