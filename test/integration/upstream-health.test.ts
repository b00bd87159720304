/**
 * An upstream's health as /status and the registry report it: one that hangs at initialize is down with
 * the timeout as its error and its restarts counted.
 */
import { afterEach, expect, it } from "vitest";
import type { UpstreamStatus } from "../../src/upstreams/upstream.ts";
import { FAULT_SERVER, type InProcessGateway, NODE, startGateway } from "../helpers/gateway.ts";

let gw: InProcessGateway | undefined;

afterEach(async () => {
  await gw?.stop();
  gw = undefined;
});

/** The first `state` event of `name` that satisfies `check` (bounded). */
function stateEvent(
  gateway: InProcessGateway,
  name: string,
  check: (status: UpstreamStatus) => boolean,
  timeoutMs = 20_000,
): Promise<UpstreamStatus> {
  const { registry } = gateway.gateway;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      registry.off("state", onState);
      reject(new Error(`no matching state event for ${name} within ${timeoutMs} ms`));
    }, timeoutMs);
    const onState = (_: unknown, status: UpstreamStatus) => {
      if (status.name !== name || !check(status)) return;
      clearTimeout(timer);
      registry.off("state", onState);
      resolve(status);
    };
    registry.on("state", onState);
  });
}

it("shows an upstream that hangs at initialize as down, naming the timeout, and counts its restarts", async () => {
  gw = await startGateway({
    mcpServers: {
      stuck: { command: NODE, args: [FAULT_SERVER, "--hang-initialize"] },
    },
    upstreams: {
      stuck: { connectTimeoutMs: 300, reconnect: { initialDelayMs: 50, maxDelayMs: 100 } },
    },
  });
  // The second process is running: the first one's initialize timed out.
  const restarted = await stateEvent(gw, "stuck", (s) => s.restarts >= 1);
  expect(restarted).toMatchObject({ state: "down" });
  expect(restarted.lastError).toMatch(
    /initialize got no answer within 300 ms \(upstreams\.stuck\.connectTimeoutMs\)/,
  );

  const report = (await (await fetch(`${gw.base}/status`)).json()) as { upstreams: UpstreamStatus[] };
  const stuck = report.upstreams.find((u) => u.name === "stuck");
  expect(stuck).toMatchObject({ state: "down", lastError: expect.stringContaining("initialize") });
  expect(stuck?.restarts).toBeGreaterThanOrEqual(1);
});
