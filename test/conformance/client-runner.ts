/**
 * Runs the conformance suite's client scenarios (conformance-next = @modelcontextprotocol/conformance
 * 0.2.0-alpha.12) with test/conformance/client-driver.ts as the client, for the e2e tests.
 */
import { spawn } from "node:child_process";
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { NODE, ROOT } from "../helpers/gateway.ts";

const CONFORMANCE = join(ROOT, "node_modules/conformance-next/dist/index.js");
const DRIVER = "node test/conformance/client-driver.ts";
const EXPECTED = join(ROOT, "test/conformance/client-expected-failures.yml");

/** Scenario → reason, per requirement set. */
export async function expectedFailures(requirements: string): Promise<Map<string, string>> {
  const all = parse(await readFile(EXPECTED, "utf8")) as Record<
    string,
    Array<{ scenario: string; reason: string }>
  >;
  return new Map((all[requirements] ?? []).map((e) => [e.scenario, e.reason]));
}

/**
 * The client scenarios a requirement set scores (`conformance list --client --requirements R`), and its
 * client extension scenarios (run and reported, never scored).
 */
export async function scenariosOf(requirements: string): Promise<{ scored: string[]; extensions: string[] }> {
  const { output } = await run(["list", "--client", "--requirements", requirements], 30_000);
  const [, client = "", rest = ""] = output.split(/Client scenarios|Run and reported/);
  const scored = [...client.matchAll(/^\s+- (\S+)$/gm)].map((m) => m[1] as string);
  const extensions = [
    ...(rest.split(/added-after-release|pending/)[0] ?? "").matchAll(/^\s+- (\S+) \[client\]$/gm),
  ].map((m) => m[1] as string);
  return { scored, extensions };
}

interface Check {
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "INFO" | "SKIPPED";
  description?: string;
  errorMessage?: string;
}

/** One scenario at the requirement set's wire: passed (exit 0, checks, no failure), or why not. */
export async function runScenario(
  scenario: string,
  requirements: string,
): Promise<{ passed: boolean; why: string }> {
  const outputDir = await mkdtemp(join(tmpdir(), "toolgate-conformance-client-"));
  try {
    const args = ["client", "--command", DRIVER, "--scenario", scenario, "--spec-version", requirements];
    // Extension scenarios are not on the spec timeline: --force runs them at the set's wire. The suite stops
    // a client after 30 s by default; a loaded machine running scenarios side by side may need longer, so the
    // bound is ours (it only stops a hung driver).
    const result = await run([...args, "--force", "--timeout", "100000", "-o", outputDir], 110_000);
    const { checks, driverStderr } = await readResults(outputDir);
    const failed = checks.filter((c) => c.status === "FAILURE" || c.status === "WARNING");
    const passed = result.code === 0 && checks.length > 0 && failed.length === 0;
    // Most telling first (a CI log shows a failure's first lines): the failed checks, the driver's stderr.
    const why = [
      ...failed.map((c) => `${c.id}: ${c.errorMessage ?? c.description ?? ""}`),
      `suite exit ${result.code}; driver stderr:\n${driverStderr.slice(-2000)}`,
      `suite output:\n${result.output.slice(-2000)}`,
    ].join("\n");
    return { passed, why };
  } finally {
    await rm(outputDir, { recursive: true, force: true });
  }
}

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

/**
 * checks.json of the one scenario run into `dir` (`<scenario>-<timestamp>/checks.json`), and the driver's
 * stderr.txt beside it (why a driver exited non-zero).
 */
async function readResults(dir: string): Promise<{ checks: Check[]; driverStderr: string }> {
  const checks: Check[] = [];
  let driverStderr = "";
  for (const entry of await readdir(dir, { recursive: true })) {
    if (entry.endsWith("checks.json"))
      checks.push(...(JSON.parse(await readFile(join(dir, entry), "utf8")) as Check[]));
    if (entry.endsWith("stderr.txt")) driverStderr += await readFile(join(dir, entry), "utf8");
  }
  return { checks, driverStderr };
}
