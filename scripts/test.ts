/**
 * `npm test`: the static checks, then each test tier in turn, with the wall time of each. Every tier runs even
 * when an earlier one failed, so one run shows every failure; the exit code is non-zero if any step failed.
 * The last line totals the tests of every tier: `tests: N passed, N failed`.
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";

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
    counts = `  (${result.passed} passed, ${result.failed} failed)`;
  }
  rows.push(`${ok ? "ok  " : "FAIL"}  ${seconds.padStart(7)} s  ${name}${counts}`);
  console.log(`\n── ${name}: ${ok ? "passed" : "FAILED"} in ${seconds} s ──\n`);
}
console.log(`test tiers:\n${rows.join("\n")}`);
// A failed step without a failed test (lint, a crashed runner) still counts as one failure in the total.
console.log(`tests: ${passed} passed, ${Math.max(failed, failedSteps)} failed`);
process.exit(failedSteps === 0 ? 0 : 1);

function readReport(file: string): { passed: number; failed: number } {
  try {
    const json = JSON.parse(readFileSync(file, "utf8")) as { numPassedTests: number; numFailedTests: number };
    return { passed: json.numPassedTests, failed: json.numFailedTests };
  } catch {
    return { passed: 0, failed: 1 };
  }
}
