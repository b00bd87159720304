/**
 * The shipped alerting rules, evaluated by Prometheus itself: `promtool check rules` and the unit tests in
 * config/prometheus-alerts.test.yml (several gateway instances, an unrelated Node service, a breaker whose
 * half-open cycle is shorter than the rule's `for:`). promtool comes from Debian's `prometheus` package,
 * which .ci/run installs; outside CI the test is skipped, saying so, when promtool is absent.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const promtool = spawnSync("promtool", ["--version"], { stdio: "ignore" }).status === 0;
if (!promtool) {
  if (process.env.CI)
    throw new Error("promtool is missing in CI: .ci/run installs Debian's prometheus package");
  console.warn("skipping the promtool rule tests: promtool is not installed (apt-get install prometheus)");
}

describe.skipIf(!promtool)("config/prometheus-alerts.yml under promtool", () => {
  it("is valid", () => {
    const out = execFileSync("promtool", ["check", "rules", "config/prometheus-alerts.yml"], {
      encoding: "utf8",
    });
    expect(out).toMatch(/SUCCESS: 10 rules found/);
  });

  it("fires each alert when it should, per instance, and only then", () => {
    const run = spawnSync("promtool", ["test", "rules", "config/prometheus-alerts.test.yml"], {
      encoding: "utf8",
    });
    expect(run.stdout + run.stderr).toMatch(/SUCCESS/);
    expect(run.status).toBe(0);
  });

  it("has a unit test for every alert", () => {
    const rules = execFileSync("grep", ["-o", "alert: [A-Za-z]*", "config/prometheus-alerts.yml"], {
      encoding: "utf8",
    });
    const tests = execFileSync("grep", ["-o", "alertname: [A-Za-z]*", "config/prometheus-alerts.test.yml"], {
      encoding: "utf8",
    });
    for (const name of rules.match(/[A-Z]\w+/g) ?? []) expect(tests, name).toContain(`alertname: ${name}`);
  });
});
