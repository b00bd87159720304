/**
 * The official MCP conformance suite, server side, run through toolgate: one upstream (the conformance
 * backend over stdio) served without a name prefix, so the suite's tool, prompt and resource names pass
 * through unchanged. Known failures live in test/conformance/expected-failures.yml with their reasons.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { eventually, type InProcessGateway, NODE, ROOT, startGateway } from "../helpers/gateway.ts";

const CONFORMANCE = join(ROOT, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
const EXPECTED_FAILURES = join(ROOT, "test/conformance/expected-failures.yml");
/** Every server scenario of the suite (`conformance list`), `--suite all`. */
const SCENARIOS = 32;

interface Check {
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED";
  errorMessage?: string;
}

describe("MCP conformance suite through toolgate", () => {
  let gateway: InProcessGateway;

  beforeAll(async () => {
    gateway = await startGateway({
      mcpServers: {
        conformance: { command: NODE, args: ["test/fixtures/conformance-server.ts"], cwd: ROOT },
      },
      upstreams: { conformance: { prefix: "" } },
    });
    await eventually(() => gateway.gateway.catalog.tools.some((t) => t.name === "test_simple_text"));
  });

  afterAll(async () => {
    await gateway?.stop();
  });

  it("passes every server scenario except the listed expected failures", async () => {
    const outputDir = await mkdtemp(join(tmpdir(), "toolgate-conformance-"));
    // localhost, not 127.0.0.1: the DNS-rebinding scenario needs a loopback host name to forge against.
    const url = gateway.url.replace("127.0.0.1", "localhost");
    const args = ["server", "--url", url, "--suite", "all", "--expected-failures", EXPECTED_FAILURES];
    const run = await runConformance([...args, "--output-dir", outputDir]);

    const results = await readResults(outputDir);
    const summary = Object.entries(results)
      .map(([scenario, checks]) => `${scenario}: ${describeChecks(checks)}`)
      .join("\n");
    expect(run.code, `conformance failed:\n${summary}\n\n${run.output.slice(-3000)}`).toBe(0);
    expect(Object.keys(results)).toHaveLength(SCENARIOS);
  });
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
    const timer = setTimeout(() => child.kill("SIGKILL"), 100_000);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** `checks.json` of each scenario, keyed by scenario (directories are `server-<scenario>-<timestamp>`). */
async function readResults(dir: string): Promise<Record<string, Check[]>> {
  const results: Record<string, Check[]> = {};
  for (const entry of (await readdir(dir)).sort()) {
    const scenario = entry.replace(/^server-/, "").replace(/-\d{4}-\d{2}-\d{2}T.*$/, "");
    results[scenario] = JSON.parse(await readFile(join(dir, entry, "checks.json"), "utf8")) as Check[];
  }
  return results;
}

function describeChecks(checks: Check[]): string {
  const notable = checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING");
  if (notable.length === 0) return `ok (${checks.filter((c) => c.status === "SUCCESS").length} passed)`;
  return notable.map((c) => `${c.status} ${c.id}: ${c.errorMessage ?? ""}`).join("; ");
}
