/**
 * The conformance suite's 0.2 line (installed as `conformance-next`, beside 0.1.16) against toolgate's server
 * face, once per protocol generation on the same `/mcp` endpoint: `--requirements 2025-11-25` (sessions) and
 * `--requirements 2026-07-28` (stateless, per-request `_meta`). The upstream is our conformance fixture, a
 * 2025-11-25 server over stdio, so the 2026 run also proves the translation (input-required rounds).
 * Each run fails on any scenario outside its checked-in expected-failures list, extension scenarios (the
 * tasks extension) included: their failures are read from each scenario's checks.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type InProcessGateway, NODE, ROOT, startGateway } from "../helpers/gateway.ts";

const CONFORMANCE = join(ROOT, "node_modules/conformance-next/dist/index.js");

interface Check {
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED";
  errorMessage?: string;
}

describe("conformance 0.2 through toolgate, both protocol generations", () => {
  let gateway: InProcessGateway;

  beforeAll(async () => {
    gateway = await startGateway({
      mcpServers: {
        conformance: { command: NODE, args: ["test/fixtures/conformance-server.ts"], cwd: ROOT },
      },
      upstreams: {
        conformance: {
          prefix: "",
          // The tasks-extension scenarios: this 2025 fixture has no task support, toolgate runs these as tasks.
          tools: {
            slow_compute: { task: { mode: "auto", thresholdMs: 300 } },
            failing_job: { task: "always" },
            protocol_error_job: { task: "always" },
            confirm_delete: { task: "always" },
            multi_input: { task: "always" },
            test_tool_with_task: { task: { mode: "auto", thresholdMs: 1000 } },
          },
        },
      },
    });
    await eventually(() => gateway.gateway.catalog.tools.some((t) => t.name === "test_simple_text"));
  });

  afterAll(async () => {
    await gateway?.stop();
  });

  it.each([
    ["2025-11-25", 33],
    ["2026-07-28", 50],
  ])(
    "passes --requirements %s except the listed expected failures",
    async (revision, scenarios) => {
      const outputDir = await mkdtemp(join(tmpdir(), `toolgate-conformance-${revision}-`));
      // localhost, not 127.0.0.1: the DNS-rebinding scenario needs a loopback host name to forge against.
      const url = gateway.url.replace("127.0.0.1", "localhost");
      const expected = join(ROOT, `test/conformance/expected-failures-${revision}.yml`);
      const run = await runConformance([
        "server",
        "--url",
        url,
        "--requirements",
        revision,
        "--expected-failures",
        expected,
        "--output-dir",
        outputDir,
      ]);
      const results = await readResults(outputDir);
      const summary = Object.entries(results)
        .map(([scenario, checks]) => `${scenario}: ${describeChecks(checks)}`)
        .join("\n");
      expect(run.code, `conformance failed:\n${summary}\n\n${run.output.slice(-3000)}`).toBe(0);
      expect(Object.keys(results)).toHaveLength(scenarios);
      // Extension scenarios (tasks-*) do not count in the suite's exit code: their checks must pass too.
      const allowed = await expectedFailures(expected);
      const failing = Object.entries(results)
        .filter(([scenario, checks]) => !allowed.has(scenario) && checks.some((c) => c.status === "FAILURE"))
        .map(([scenario, checks]) => `${scenario}: ${describeChecks(checks)}`);
      expect(failing, summary).toEqual([]);
    },
    120_000,
  );
});

function runConformance(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [CONFORMANCE, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), 110_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** The scenario names an expected-failures file lists (`  - name` lines). */
async function expectedFailures(file: string): Promise<Set<string>> {
  const text = await readFile(file, "utf8");
  return new Set([...text.matchAll(/^\s*-\s*([\w-]+)/gm)].map((m) => m[1] as string));
}

/** `checks.json` of each scenario (a scenario that crashed before writing one counts as a failure). */
async function readResults(dir: string): Promise<Record<string, Check[]>> {
  const results: Record<string, Check[]> = {};
  for (const entry of (await readdir(dir)).sort()) {
    const scenario = entry.replace(/^server-/, "").replace(/-\d{4}-\d{2}-\d{2}T.*$/, "");
    try {
      results[scenario] = JSON.parse(await readFile(join(dir, entry, "checks.json"), "utf8")) as Check[];
    } catch {
      results[scenario] = [{ id: "no-checks-json", status: "FAILURE", errorMessage: "no checks.json" }];
    }
  }
  return results;
}

function describeChecks(checks: Check[]): string {
  const notable = checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING");
  if (notable.length === 0) return `ok (${checks.filter((c) => c.status === "SUCCESS").length} passed)`;
  return notable.map((c) => `${c.status} ${c.id}: ${c.errorMessage ?? ""}`).join("; ");
}
