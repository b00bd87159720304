/**
 * The shipped rules and dashboard against a real Prometheus (Debian's `prometheus` 2.x, started here on
 * 127.0.0.1 and stopped after): it scrapes two gateways and an unrelated Node service, then every dashboard
 * query must evaluate, the process and event-loop panels must show only toolgate's instances even with
 * `$job` = `.*`, per-instance panels must keep both gateways apart, and every alerting rule must evaluate
 * without error. Skipped outside CI when the binary is absent (apt-get install prometheus).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningFaultServer, startFaultServer } from "../fixtures/fault-server.ts";
import { connectClient, eventually, type InProcessGateway, ROOT, startGateway } from "../helpers/gateway.ts";
import { freePort } from "../helpers/ports.ts";

const available = spawnSync("prometheus", ["--version"], { stdio: "ignore" }).status === 0;
if (!available) {
  if (process.env.CI)
    throw new Error("prometheus is missing in CI: .ci/run installs Debian's prometheus package");
  console.warn("skipping the real-Prometheus test: prometheus is not installed (apt-get install prometheus)");
}

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

let upstream: RunningFaultServer;
const gateways: InProcessGateway[] = [];
let other: Server;
let prometheus: ChildProcess | undefined;
let dir: string;
let api: string;

async function query(expr: string): Promise<Sample[]> {
  const res = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { result: Sample[] } };
  if (body.status !== "success") throw new Error(`${body.error}: ${expr}`);
  return body.data?.result ?? [];
}

function dashboardExprs(): Array<{ title: string; expr: string }> {
  const board = JSON.parse(
    spawnSync("cat", [join(ROOT, "config/grafana-dashboard.json")], { encoding: "utf8" }).stdout,
  ) as { panels: Array<{ title: string; targets?: Array<{ expr: string }> }> };
  return board.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({
      title: p.title,
      // Grafana's substitutions, with the widest `$job`: the panels must still show only toolgate.
      expr: t.expr
        .replaceAll("$__rate_interval", "1m")
        .replaceAll("$job", ".*")
        .replaceAll("$instance", ".*")
        .replaceAll("$tool", ".*")
        .replaceAll("$upstream", ".*"),
    })),
  );
}

beforeAll(async () => {
  if (!available) return;
  upstream = await startFaultServer({ transport: "http", name: "faults" });
  for (let i = 0; i < 2; i++) {
    gateways.push(
      await startGateway({
        mcpServers: { faults: { type: "http", url: upstream.url } },
        telemetry: { metrics: { process: true } },
      }),
    );
  }
  // Another Node service in the same Prometheus, with the same runtime metric names.
  other = createServer((_req, res) => {
    res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
    res.end(
      "# TYPE nodejs_eventloop_delay_p99_seconds gauge\nnodejs_eventloop_delay_p99_seconds 0.9\n# TYPE process_memory_usage gauge\nprocess_memory_usage 1e9\n",
    );
  });
  await new Promise<void>((resolve) => other.listen(0, "127.0.0.1", resolve));
  const clients: Client[] = [];
  for (const gw of gateways) {
    const client = await connectClient("http", gw);
    await eventually(async () => (await client.listTools()).tools.length > 0);
    for (let i = 0; i < 5; i++) await client.callTool({ name: "faults__echo", arguments: { text: "x" } });
    clients.push(client);
  }
  for (const c of clients) await c.close();

  dir = await mkdtemp(join(tmpdir(), "toolgate-prometheus-"));
  const rules = await readFile(join(ROOT, "config/prometheus-alerts.yml"), "utf8");
  await writeFile(join(dir, "rules.yml"), rules);
  const targets = gateways.map((g) => `"${new URL(g.base).host}"`).join(", ");
  await writeFile(
    join(dir, "prometheus.yml"),
    [
      "global: { scrape_interval: 1s, evaluation_interval: 1s }",
      "rule_files: [rules.yml]",
      "scrape_configs:",
      `  - { job_name: toolgate, static_configs: [{ targets: [${targets}] }] }`,
      `  - { job_name: other, static_configs: [{ targets: ["127.0.0.1:${(other.address() as AddressInfo).port}"] }] }`,
      "",
    ].join("\n"),
  );
  const port = await freePort();
  api = `http://127.0.0.1:${port}`;
  prometheus = spawn(
    "prometheus",
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: "ignore" },
  );
  // Enough samples for rate() over the scrapes: a few seconds of 1 s scrapes on every target.
  await eventually(
    async () => {
      const up = await query('count(up{job=~"toolgate|other"} == 1) == 3').catch(() => []);
      if (up.length === 0) return false;
      return (await query("count_over_time(toolgate_calls_total[1m])")).every((s) => Number(s.value[1]) >= 4);
    },
    60_000,
    250,
  );
}, 120_000);

afterAll(async () => {
  prometheus?.kill("SIGTERM");
  if (prometheus && prometheus.exitCode === null) await new Promise((r) => prometheus?.once("exit", r));
  for (const gw of gateways) await gw.stop();
  other?.close();
  await upstream?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe.skipIf(!available)("the dashboard and rules on a real Prometheus", () => {
  it("evaluates every dashboard query", async () => {
    for (const { expr } of dashboardExprs()) await query(expr);
  });

  it("shows process and event-loop panels for toolgate's instances only", async () => {
    const process = dashboardExprs().filter((e) => /nodejs_|process_|v8js_/.test(e.expr));
    expect(process.length).toBeGreaterThanOrEqual(4);
    for (const { expr } of process) {
      const result = await query(expr);
      const jobs = new Set(result.map((s) => s.metric.job));
      if (result.length) expect([...jobs], expr).toEqual(["toolgate"]);
    }
    const memory = await query(process.find((e) => e.expr.startsWith("process_memory_usage"))?.expr ?? "");
    expect(new Set(memory.map((s) => s.metric.instance)).size).toBe(2);
  });

  it("keeps the two gateways apart in the calls panel", async () => {
    const calls = dashboardExprs().find((e) => e.title === "Calls per second");
    const result = await query(calls?.expr ?? "");
    const echo = result.filter(
      (s) => s.metric.toolgate_tool === "faults__echo" && s.metric.toolgate_outcome === "ok",
    );
    expect(new Set(echo.map((s) => s.metric.instance)).size).toBe(2);
  });

  it("evaluates every alerting rule without error", async () => {
    await eventually(
      async () => {
        const res = (await (await fetch(`${api}/api/v1/rules`)).json()) as {
          data: { groups: Array<{ rules: Array<{ name: string; health: string; lastError?: string }> }> };
        };
        const rules = res.data.groups.flatMap((g) => g.rules);
        return rules.length === 10 && rules.every((r) => r.health === "ok");
      },
      30_000,
      250,
    );
  });
});
