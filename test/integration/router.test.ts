/** Router decisions that need a running gateway but no client. */
import { afterAll, beforeAll, expect, it } from "vitest";
import { FAULT_SERVER, type InProcessGateway, NODE, startGateway } from "../helpers/gateway.ts";

let gw: InProcessGateway;
beforeAll(async () => {
  gw = await startGateway({
    mcpServers: { faults: { command: NODE, args: [FAULT_SERVER] } },
    security: { pinning: { mode: "off" } },
  });
});
afterAll(() => gw.stop());

it("answers an upstream's roots/list with no roots when no call is in flight to ask a client", async () => {
  const answer = await gw.gateway.router.serverRequest(
    "faults",
    "roots/list",
    {},
    new AbortController().signal,
  );
  expect(answer).toEqual({ roots: [] });
});

it("refuses other server→client requests when no call is in flight, naming the upstream", async () => {
  await expect(
    gw.gateway.router.serverRequest("faults", "sampling/createMessage", {}, new AbortController().signal),
  ).rejects.toThrow(/faults/);
});
