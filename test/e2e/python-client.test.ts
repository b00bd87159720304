/**
 * The official MCP Python SDK (PyPI `mcp` 2.x) as a client of the gateway binary: test/interop/python_client.py
 * connects to toolgate's `/mcp` over Streamable HTTP, once forcing the 2025-11-25 handshake (`--mode legacy`)
 * and once with the SDK's default negotiation (`auto`, which lands on 2026-07-28), and against a 2025
 * upstream (the fault fixture) and a 2026 upstream (the modern fixture) in each run: it lists the tools,
 * calls with a progress callback, cancels a call at its first progress update, and answers an elicitation
 * with its callback. The script prints a JSON summary; the upstreams' own records show the cancellations.
 *
 * `.ci/run` installs the package; outside CI the test is skipped, with a message, when python3 or `mcp` is
 * missing.
 */
import { execFile, spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { type RunningModernServer, startModernServer } from "../fixtures/modern-server.ts";
import { eventually, type GatewayProcess, ROOT, spawnGateway } from "../helpers/gateway.ts";

const SCRIPT = join(ROOT, "test/interop/python_client.py");
const QUESTION = "What is your name?";

const available = (() => {
  const probe = spawnSync("python3", ["-c", "import mcp"], { encoding: "utf8" });
  if (probe.status === 0) return true;
  const why = probe.error ? "python3 is not installed" : "the Python package `mcp` is not installed";
  if (process.env.CI) throw new Error(`${why} in CI: .ci/run installs it (python3 -m pip install mcp==…)`);
  console.warn(`skipping the Python SDK interop test: ${why} (python3 -m pip install "mcp==2.3.0")`);
  return false;
})();

interface Summary {
  sdk: string;
  mode: string;
  protocolVersion: string;
  server: string | null;
  tools: string[];
  progress: Array<{ tool: string; text: string; isError: boolean; updates: number[] }>;
  cancel: Array<{ tool: string; outcome: string }>;
  elicitation: Array<{ tool: string; asked: string[]; text: string }>;
  error?: string;
}

/** Runs the script; the timeout only stops a hung run. */
function runPython(url: string, mode: "legacy" | "auto"): Promise<Summary> {
  const args = [
    SCRIPT,
    url,
    "--mode",
    mode,
    ...["--progress", "legacy__progress", JSON.stringify({ steps: 3, intervalMs: 20 })],
    ...["--progress", "modern__slow", JSON.stringify({ ms: 20 })],
    ...["--cancel", "legacy__progress", JSON.stringify({ steps: 2, intervalMs: 600_000 })],
    ...["--cancel", "modern__slow", JSON.stringify({ ms: 600_000 })],
    ...["--elicit", "legacy__elicit", JSON.stringify({ message: QUESTION })],
    ...["--elicit", "modern__ask", "{}"],
  ];
  return new Promise((resolve, reject) => {
    execFile("python3", args, { cwd: ROOT, timeout: 90_000 }, (error, stdout, stderr) => {
      const line = stdout.trim().split("\n").at(-1) ?? "";
      try {
        const summary = JSON.parse(line) as Summary;
        if (summary.error) reject(new Error(`python client failed: ${summary.error}\n${stderr}`));
        else resolve(summary);
      } catch {
        reject(new Error(`python client printed no summary (${String(error)}):\n${stdout}\n${stderr}`));
      }
    });
  });
}

describe.skipIf(!available)("the official Python SDK as a client", () => {
  let legacy: RunningFaultServer;
  let modern: RunningModernServer;
  let gw: GatewayProcess;

  beforeAll(async () => {
    legacy = await startFaultServer({ transport: "http" });
    modern = await startModernServer();
    gw = await spawnGateway({
      mcpServers: {
        legacy: { type: "http", url: legacy.url },
        modern: { type: "http", url: modern.url },
      },
    });
    await eventually(async () => (await fetch(`${gw.base}/readyz`)).ok);
  }, 60_000);

  afterAll(async () => {
    await gw?.stop();
    await legacy?.close();
    await modern?.close();
  });

  it.each([
    { mode: "legacy" as const, era: "2025-11-25" },
    { mode: "auto" as const, era: "2026-07-28" },
  ])(
    "in $mode mode ($era) lists, calls with progress, cancels and answers elicitation on both upstream eras",
    async ({ mode, era }) => {
      const legacyCancelled = legacy.stats().cancelled.length;
      const modernCancelled = modern.cancelled;
      const summary = await runPython(gw.url, mode);

      expect(summary.sdk).toMatch(/^mcp 2\./);
      expect(summary.protocolVersion).toBe(era);
      expect(summary.server).toBe("toolgate");
      expect(summary.tools).toEqual(
        expect.arrayContaining(["legacy__progress", "legacy__elicit", "modern__slow", "modern__ask"]),
      );

      const [fromLegacy, fromModern] = summary.progress;
      expect(fromLegacy).toMatchObject({ tool: "legacy__progress", text: "done", isError: false });
      expect(fromModern).toMatchObject({ tool: "modern__slow", text: "done", isError: false });
      // The Python SDK routes an update when it reads it, before a response read after it, so it sees
      // every update the gateway sent ahead of the result.
      expect(fromLegacy?.updates).toEqual([1, 2, 3]);
      expect(fromModern?.updates).toEqual([1, 2]);

      expect(summary.cancel).toEqual([
        { tool: "legacy__progress", outcome: "cancelled" },
        { tool: "modern__slow", outcome: "cancelled" },
      ]);
      await eventually(() => legacy.stats().cancelled.length === legacyCancelled + 1);
      await eventually(() => modern.cancelled === modernCancelled + 1);

      expect(summary.elicitation).toEqual([
        {
          tool: "legacy__elicit",
          asked: [QUESTION],
          text: JSON.stringify({ action: "accept", content: { answer: "Ada" } }),
        },
        { tool: "modern__ask", asked: [QUESTION], text: "hello Ada" },
      ]);
    },
    120_000,
  );
});
