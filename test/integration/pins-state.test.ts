/**
 * Tool pins live in the state directory of the config that made them and are keyed by the upstream's identity:
 * two configs that give different servers one name never see each other's pins as "changed".
 */
import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { createGateway } from "../../src/app.ts";
import { loadConfigFile } from "../../src/config/load.ts";
import { silentLogger } from "../../src/telemetry/log.ts";
import { EVERYTHING, FAULT_SERVER, NODE } from "../helpers/gateway.ts";

/** Serve `file` until its upstreams settle, return the catalog's tools, stop (pins are written by then). */
async function runOnce(file: string) {
  const { config } = await loadConfigFile(file, {});
  const gateway = await createGateway(config, { log: silentLogger, env: {} });
  try {
    await gateway.waitForUpstreams(20_000);
    return gateway.snapshot().tools;
  } finally {
    await gateway.stop();
  }
}

describe("pins beside the config, keyed by upstream identity", () => {
  it("a second config naming another server alike does not flag its tools", async () => {
    const dir = await mkdtemp(join(tmpdir(), "toolgate-state-"));
    const a = join(dir, "a.json");
    const b = join(dir, "b.json");
    await writeFile(a, JSON.stringify({ mcpServers: { s: { command: NODE, args: [FAULT_SERVER] } } }));
    await writeFile(b, JSON.stringify({ mcpServers: { s: { command: NODE, args: [EVERYTHING, "stdio"] } } }));

    const first = await runOnce(a);
    expect(first.some((t) => t.name === "s__echo")).toBe(true);
    const second = await runOnce(b);
    const echo = second.find((t) => t.name === "s__echo");
    expect(echo?.description).toBeDefined();
    expect(echo?.description).not.toMatch(/changed/i);

    const stored = JSON.parse(await readFile(join(dir, ".toolgate", "pins.json"), "utf8"));
    expect(stored.version).toBe(2);
    const keys = Object.keys(stored.tools);
    expect(keys).toHaveLength(2);
    expect(keys.every((k) => k.startsWith("s#"))).toBe(true);
    const pending = Object.values(stored.tools).flatMap((tools) =>
      Object.values(tools as Record<string, { pending?: unknown }>).filter((p) => p.pending),
    );
    expect(pending).toEqual([]);

    // The first server again: its own pins still match.
    const again = await runOnce(a);
    expect(again.find((t) => t.name === "s__echo")?.description).not.toMatch(/changed/i);
  }, 60_000);
});
