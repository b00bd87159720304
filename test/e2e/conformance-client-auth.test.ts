/**
 * The conformance suite's client auth scenarios (both requirement sets, and the client extension scenarios
 * of each set), driven through toolgate's upstream side: test/conformance/client-driver.ts configures the
 * scenario's server as an upstream with `auth.oauth`, logs in in process (the suite's authorization server
 * approves at once) and drives the calls through toolgate. Each scenario spawns the suite and the driver, with
 * their own servers on ephemeral ports and their own state directory, so scenarios run side by side, the e2e
 * project's maxConcurrency at a time (31 + 20 scenarios: 127 s one at a time in CI, most of it process
 * start-up on one core). Exceptions are in client-expected-failures.yml
 * with their reasons; a listed scenario that passes fails the test (stale list).
 */
import { describe, expect, it } from "vitest";
import { expectedFailures, runScenario, scenariosOf } from "../conformance/client-runner.ts";

const REQUIREMENTS = ["2026-07-28", "2025-11-25"] as const;

describe.each(REQUIREMENTS)("conformance client auth scenarios, requirements %s", async (requirements) => {
  const { scored, extensions } = await scenariosOf(requirements);
  const auth = [...scored, ...extensions].filter((s) => s.startsWith("auth/"));
  const listed = await expectedFailures(requirements);

  it("has auth scenarios to run", () => {
    expect(auth.length).toBeGreaterThan(0);
  });

  it.concurrent.for(auth)(
    "%s",
    { timeout: 120_000 },
    // Concurrent tests assert with their own context's expect.
    async (scenario, { expect }) => {
      const { passed, why } = await runScenario(scenario, requirements);
      if (listed.has(scenario)) {
        expect(passed, `${scenario} passes now: remove it from client-expected-failures.yml`).toBe(false);
      } else {
        expect(passed, `${scenario} failed:\n${why}`).toBe(true);
      }
    },
  );
});
