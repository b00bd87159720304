/**
 * Stopping the gateway stops a wrapped stdio upstream's whole process tree, not only the process it spawned
 * (an `npx`-style wrapper does not pass signals on, and its children would outlive the gateway), also while
 * the upstream is still starting (`npx` fetching a package neither reads stdin nor answers for a while).
 */
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { alive } from "../../src/upstreams/process-tree.ts";
import { eventually, NODE, ROOT, startGateway } from "../helpers/gateway.ts";

describe.skipIf(process.platform !== "linux")("stopping a wrapped stdio upstream", () => {
  it("leaves no process of a wrapped stdio upstream running after stop", async () => {
    const pidFile = join(await mkdtemp(join(tmpdir(), "toolgate-tree-")), "stray.pid");
    const gw = await startGateway({
      mcpServers: {
        wrapped: {
          command: NODE,
          args: [join(ROOT, "test/fixtures/wrapped-upstream.ts")],
          env: { WRAPPED_PID_FILE: pidFile },
        },
      },
    });
    await gw.gateway.waitForUpstreams(60_000);
    expect(gw.gateway.registry.get("wrapped")?.status().state).toBe("ready");
    const stray = Number(await readFile(pidFile, "utf8"));
    expect(alive(stray)).toBe(true);
    await gw.stop();
    // The stray process belongs to the upstream's tree: the stop takes it down (SIGTERM, then SIGKILL).
    await eventually(() => !alive(stray));
  });

  it("leaves no process of it running when stopped before its handshake ends", async () => {
    const pidFile = join(await mkdtemp(join(tmpdir(), "toolgate-tree-")), "stray.pid");
    const gw = await startGateway({
      mcpServers: {
        starting: {
          command: NODE,
          // Starts serving a minute from now: the stop comes during the handshake.
          args: [join(ROOT, "test/fixtures/wrapped-upstream.ts"), "--start-delay-ms", "60000"],
          env: { WRAPPED_PID_FILE: pidFile },
        },
      },
    });
    const stray = await eventually(
      async () => Number(await readFile(pidFile, "utf8").catch(() => "")) || undefined,
    );
    expect(gw.gateway.registry.get("starting")?.status().state).toBe("connecting");
    await gw.stop();
    await eventually(() => !alive(stray ?? 0));
  });
});
