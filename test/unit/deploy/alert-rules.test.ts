/**
 * The cluster alerts in config/prometheus-alerts.yml, evaluated by Prometheus' own rule engine
 * (`promtool test rules`, Debian's prometheus package): Redis lost by a replica fires after 30 s and
 * resolves when it is back; lost leases warn. Skips when promtool is not installed.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, stringify } from "yaml";

const ROOT = new URL("../../..", import.meta.url).pathname;
const RULES = join(ROOT, "config/prometheus-alerts.yml");
const HAS_PROMTOOL = spawnSync("sh", ["-c", "command -v promtool"]).status === 0;

type Rule = { alert: string; labels: Record<string, string>; annotations: Record<string, string> };
const rules = (parseYaml(readFileSync(RULES, "utf8")) as { groups: Array<{ rules: Rule[] }> }).groups.flatMap(
  (g) => g.rules,
);

/** The alert as Prometheus renders it for one replica (the annotations use only toolgate_instance and $value). */
function expected(name: string, instance: string, value: string, extra: Record<string, string> = {}) {
  const rule = rules.find((r) => r.alert === name) as Rule;
  const render = (text: string) =>
    text.replaceAll("{{ $labels.toolgate_instance }}", instance).replaceAll("{{ $value }}", value);
  return {
    exp_labels: { ...rule.labels, toolgate_instance: instance, ...extra },
    exp_annotations: Object.fromEntries(Object.entries(rule.annotations).map(([k, v]) => [k, render(v)])),
  };
}

describe.skipIf(!HAS_PROMTOOL)("cluster alert rules (promtool)", () => {
  it("fire while a replica cannot reach Redis, resolve when it can, and warn on lost leases", () => {
    const tests = {
      rule_files: [RULES],
      evaluation_interval: "15s",
      tests: [
        {
          interval: "15s",
          input_series: [
            // Up, then down from 30 s to 90 s, then up again.
            { series: 'toolgate_cluster_store_up{toolgate_instance="r1"}', values: "1 1 0 0 0 0 0 1 1" },
            { series: 'toolgate_cluster_store_up{toolgate_instance="r2"}', values: "1 1 1 1 1 1 1 1 1" },
            {
              series:
                'toolgate_cluster_events_total{toolgate_instance="r1",toolgate_cluster_event="leasesLost"}',
              values: "0 0 0 1 1 1 1 1 1",
            },
          ],
          alert_rule_test: [
            { eval_time: "30s", alertname: "ToolgateClusterStoreDown", exp_alerts: [] },
            {
              eval_time: "75s",
              alertname: "ToolgateClusterStoreDown",
              exp_alerts: [expected("ToolgateClusterStoreDown", "r1", "0")],
            },
            { eval_time: "120s", alertname: "ToolgateClusterStoreDown", exp_alerts: [] },
            { eval_time: "15s", alertname: "ToolgateClusterLeasesLost", exp_alerts: [] },
          ],
        },
      ],
    };
    const file = join(mkdtempSync(join(tmpdir(), "toolgate-promtool-")), "cluster.test.yml");
    writeFileSync(file, stringify(tests));
    const result = spawnSync("promtool", ["test", "rules", file], { encoding: "utf8" });
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });
});
