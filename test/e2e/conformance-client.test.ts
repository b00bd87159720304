/**
 * The official conformance suite's client scenarios (0.2 line, both requirement sets), with toolgate as the
 * client: test/conformance/client-driver.ts points toolgate at each scenario's server and drives it through
 * toolgate's endpoint. One scenario at a time (the machine has 2 cores). A scenario passes unless it is in
 * test/conformance/client-expected-failures.yml, which gives the reason for each entry; a listed scenario that
 * passes fails the test too (stale list). Auth scenarios are listed there, not run: upstream authorization is
 * a separate issue.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { NODE, ROOT } from "../helpers/gateway.ts";

const CONFORMANCE = join(ROOT, "node_modules/conformance-next/dist/index.js");
const DRIVER = "node test/conformance/client-driver.ts";
const EXPECTED = join(ROOT, "test/conformance/client-expected-failures.yml");
const REQUIREMENTS = ["2026-07-28", "2025-11-25"] as const;

type Expected = Record<string, Array<{ scenario: string; reason: string }>>;
const expected = parse(await readFile(EXPECTED, "utf8")) as Expected;

interface Check {
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED";
  errorMessage?: string;
}

/** The client scenarios a requirement set scores (`conformance list --client --requirements R`). */
async function scenariosOf(requirements: string): Promise<string[]> {
  const { output } = await run(["list", "--client", "--requirements", requirements], 30_000);
  const section = output.split("Client scenarios")[1]?.split("Run and reported")[0] ?? "";
  return [...section.matchAll(/^\s+- (\S+)$/gm)].map((m) => m[1] as string);
}

describe.each(REQUIREMENTS)("conformance client scenarios, requirements %s", async (requirements) => {
  const all = await scenariosOf(requirements);
  const listed = new Map((expected[requirements] ?? []).map((e) => [e.scenario, e.reason]));

  it("lists every auth scenario as an expected failure with its reason", () => {
    const auth = all.filter((s) => s.startsWith("auth/"));
    expect(auth.length).toBeGreaterThan(0);
    for (const scenario of auth) expect(listed.get(scenario), scenario).toMatch(/\S/);
    for (const scenario of listed.keys()) expect(all, "listed but not a scenario").toContain(scenario);
  });

  it.each(all.filter((s) => !s.startsWith("auth/")))(
    "%s",
    async (scenario) => {
      const outputDir = await mkdtemp(join(tmpdir(), "toolgate-conformance-client-"));
      const args = ["client", "--command", DRIVER, "--scenario", scenario, "--spec-version", requirements];
      const result = await run([...args, "-o", outputDir], 110_000);
      const checks = await readChecks(outputDir);
      const failed = checks.filter((c) => c.status === "FAILURE");
      const passed = result.code === 0 && checks.length > 0 && failed.length === 0;
      const why =
        failed.map((c) => `${c.id}: ${c.errorMessage ?? ""}`).join("\n") || result.output.slice(-2000);
      if (listed.has(scenario)) {
        expect(passed, `${scenario} passes now: remove it from client-expected-failures.yml`).toBe(false);
      } else {
        expect(passed, `${scenario} failed:\n${why}`).toBe(true);
      }
    },
    120_000,
  );
});

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, [CONFORMANCE, ...args], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk: Buffer) => {
      output += chunk;
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.once("error", reject);
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** checks.json of the one scenario run into `dir` (`<scenario>-<timestamp>/checks.json`). */
async function readChecks(dir: string): Promise<Check[]> {
  const checks: Check[] = [];
  for (const entry of await readdir(dir, { recursive: true })) {
    if (!entry.endsWith("checks.json")) continue;
    checks.push(...(JSON.parse(await readFile(join(dir, entry), "utf8")) as Check[]));
  }
  return checks;
}
