/**
 * `npm test`: the static checks, then each test tier in turn, with the wall time of each. Every tier runs even
 * when an earlier one failed, so one run shows every failure; the exit code is non-zero if any step failed.
 * The end of the output is what a CI log shows first: each failed test with the start of its message, then the
 * tiers' table, and last the total of every tier: `tests: N passed, N failed`.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { relative } from "node:path";
import { stripVTControlCharacters } from "node:util";

const ARTIFACTS = "test/artifacts";
const steps: Array<{ name: string; script: string; tier?: string }> = [
  // The checked-in config schema is compared with the generated one by test/unit/config/json-schema.test.ts.
  { name: "static (lint, typecheck, layers)", script: "test:static" },
  { name: "unit", script: "test:unit", tier: "unit" },
  { name: "integration", script: "test:integration", tier: "integration" },
  { name: "e2e", script: "test:e2e", tier: "e2e" },
];

mkdirSync(ARTIFACTS, { recursive: true });
const rows: string[] = [];
let failedSteps = 0;
let passed = 0;
let failed = 0;
const failures: string[] = [];
for (const { name, script, tier } of steps) {
  const report = `${ARTIFACTS}/${tier}-results.json`;
  const extra = tier ? ["--", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`] : [];
  rmSync(report, { force: true });
  const started = performance.now();
  const run = spawnSync("npm", ["run", "--silent", script, ...extra], { stdio: "inherit" });
  const seconds = ((performance.now() - started) / 1000).toFixed(1);
  const ok = run.status === 0;
  if (!ok) failedSteps++;
  let counts = "";
  if (tier) {
    const result = readReport(report);
    passed += result.passed;
    failed += result.failed;
    failures.push(...result.failures);
    counts = `  (${result.passed} passed, ${result.failed} failed)`;
  }
  rows.push(`${ok ? "ok  " : "FAIL"}  ${seconds.padStart(7)} s  ${name}${counts}`);
  console.log(`\n── ${name}: ${ok ? "passed" : "FAILED"} in ${seconds} s ──\n`);
}
if (failures.length > 0) console.log(`failed tests:\n${failures.join("\n")}\n`);
console.log(`test tiers:\n${rows.join("\n")}`);
// A failed step without a failed test (lint, a crashed runner) still counts as one failure in the total.
console.log(`tests: ${passed} passed, ${Math.max(failed, failedSteps)} failed`);
process.exit(failedSteps === 0 ? 0 : 1);

interface Report {
  numPassedTests: number;
  numFailedTests: number;
  testResults: Array<{
    name: string;
    status: string;
    message?: string;
    assertionResults: Array<{ fullName: string; status: string; failureMessages?: string[] }>;
  }>;
}

/** A tier's counts, and each failure as its file, its test and the first lines of its message. */
function readReport(file: string): { passed: number; failed: number; failures: string[] } {
  let json: Report;
  try {
    json = JSON.parse(readFileSync(file, "utf8")) as Report;
  } catch {
    return { passed: 0, failed: 1, failures: [`${file}: no report (the runner did not finish)`] };
  }
  const failures: string[] = [];
  for (const result of json.testResults) {
    const where = relative(process.cwd(), result.name);
    const tests = result.assertionResults.filter((t) => t.status === "failed");
    for (const test of tests)
      failures.push(`✗ ${where} › ${test.fullName}\n${excerpt(test.failureMessages?.join("\n"))}`);
    // A file that failed outside its tests (an import, a hook).
    if (tests.length === 0 && result.status === "failed")
      failures.push(`✗ ${where}\n${excerpt(result.message)}`);
  }
  return { passed: json.numPassedTests, failed: json.numFailedTests, failures };
}

/** The first lines of a failure message, plain text, indented under its test. */
function excerpt(message = ""): string {
  const lines = stripVTControlCharacters(message)
    .split("\n")
    .filter((line) => line.trim() !== "");
  const head = lines.slice(0, 12).map((line) => `    ${line.slice(0, 300)}`);
  if (lines.length > head.length) head.push(`    … ${lines.length - head.length} more lines`);
  return head.join("\n");
}
