/**
 * The start-up hold in process: a client's cancellation ends its wait for the first complete catalog.
 */
import { describe, expect, it } from "vitest";
import { FAULT_SERVER, NODE, startGateway } from "../helpers/gateway.ts";

describe("start-up hold", () => {
  it("a cancelled request stops waiting for the first catalog at once", async () => {
    const { gateway, stop } = await startGateway({
      mcpServers: { late: { command: NODE, args: [FAULT_SERVER, "--start-delay-ms", "60000"] } },
    });
    try {
      const controller = new AbortController();
      const waiting = gateway.whenCatalogReady(controller.signal);
      controller.abort(new Error("client cancelled"));
      await expect(waiting).rejects.toThrow("client cancelled");
    } finally {
      await stop();
    }
  });

  it("no upstreams: the catalog is complete at once", async () => {
    const { gateway, base, stop } = await startGateway({ mcpServers: {} });
    try {
      await gateway.whenCatalogReady(new AbortController().signal);
      expect((await fetch(`${base}/readyz`)).status).toBe(200);
    } finally {
      await stop();
    }
  });
});
