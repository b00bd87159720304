/**
 * Stopping the gateway stops a wrapped stdio upstream's whole process tree, not only the process it spawned
 * (an `npx`-style wrapper does not pass signals on, and its children would outlive the gateway).
 */
import { mkdtemp, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import { alive } from "../../src/upstreams/process-tree.ts";
import { eventually, NODE, ROOT, startGateway } from "../helpers/gateway.ts";

it.skipIf(process.platform !== "linux")(
  "leaves no process of a wrapped stdio upstream running after stop",
  async () => {
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
  },
);
