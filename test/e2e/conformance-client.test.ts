/**
 * The official conformance suite's client scenarios (0.2 line, both requirement sets), with toolgate as the
 * client: test/conformance/client-driver.ts points toolgate at each scenario's server and drives it through
 * toolgate's endpoint. Each scenario has its own processes, ports and output directory, so scenarios run side
 * by side, the e2e project's maxConcurrency at a time. A scenario passes unless it is in
 * test/conformance/client-expected-failures.yml, which gives the reason for each entry; a listed scenario that
 * passes fails the test too (stale list). The auth scenarios run in conformance-client-auth.test.ts.
 */
import { describe, expect, it } from "vitest";
import { expectedFailures, runScenario, scenariosOf } from "../conformance/client-runner.ts";

const REQUIREMENTS = ["2026-07-28", "2025-11-25"] as const;

describe.each(REQUIREMENTS)("conformance client scenarios, requirements %s", async (requirements) => {
  const { scored } = await scenariosOf(requirements);
  const listed = await expectedFailures(requirements);

  it("lists only scenarios of the set", async () => {
    const { extensions } = await scenariosOf(requirements);
    for (const scenario of listed.keys())
      expect([...scored, ...extensions], "listed but not a scenario").toContain(scenario);
  });

  it.concurrent.for(scored.filter((s) => !s.startsWith("auth/")))(
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
