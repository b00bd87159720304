/** Per-session bounds of the downstream server. */
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
beforeAll(async () => {
  gw = await startGateway({
    gateway: { maxPendingPerSession: 2 },
    mcpServers: { faults: { command: NODE, args: [FAULT_SERVER] } },
    security: { pinning: { mode: "off" } },
  });
});
afterAll(() => gw.stop());

it("refuses a request beyond the session's pending limit, naming the setting, and serves it again later", async () => {
  const client = await connectClient("http", gw);
  await eventually(async () => (await client.listTools()).tools.some((t) => t.name === "faults__slow"));
  // The two calls hold upstream until released, so the third surely arrives while both are pending.
  const slow = () => client.callTool({ name: "faults__slow", arguments: { ms: 0, hold: "pending" } });
  const running = [slow(), slow()];
  await eventually(async () => gw.gateway.pipelines.bulkheadStates().some((b) => b.inFlight === 2));
  await expect(slow()).rejects.toThrow(/maxPendingPerSession/);
  // Another session releases them: this one has no room for the call.
  const other = await connectClient("http", gw);
  await other.callTool({ name: "faults__release", arguments: { hold: "pending" } });
  await other.close();
  for (const result of await Promise.all(running)) expect(result.isError).not.toBe(true);
  expect(textOf(await client.callTool({ name: "faults__echo", arguments: { text: "again" } }))).toBe("again");
  await client.close();
});
