/**
 * The Prometheus names that config/prometheus-alerts.yml and config/grafana-dashboard.json use must be the
 * ones /metrics exports: scrape a telemetry that recorded every kind of event, parse the exposition with a
 * strict text-format parser, parse every PromQL expression with Prometheus' own grammar, and compare.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import { parser } from "@prometheus-io/lezer-promql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { metricsRoutes, PROMETHEUS_CONTENT_TYPE } from "../../../src/server/status/metrics.ts";
import type { Telemetry } from "../../../src/telemetry/telemetry.ts";
import { harness } from "./harness.ts";
import { type Family, parsePrometheusText } from "./prometheus-text.ts";

const call = { tool: "gh__create_issue", upstream: "gh", attempt: 1 } as const;

/** Series names (histograms with _bucket/_sum/_count) → the label names seen on them. */
type Scrape = Map<string, Set<string>>;

function seriesOf(families: Map<string, Family>): Scrape {
  const series: Scrape = new Map();
  for (const family of families.values()) {
    for (const sample of family.samples) {
      const labels = series.get(sample.name) ?? new Set<string>();
      for (const label of Object.keys(sample.labels)) labels.add(label);
      series.set(sample.name, labels);
    }
  }
  return series;
}

/** Exercise every instrument, so that every series the configs may use is in the scrape. */
async function exercise(t: Telemetry) {
  await t.serverSpan({ method: "tools/call", target: "gh__create_issue", transport: "tcp" }, async () => {
    t.onPolicyEvent({ type: "attemptStart", ...call });
    t.onPolicyEvent({ type: "queued", ...call, bulkhead: "b", priority: 0, queued: 1 });
    t.onPolicyEvent({ type: "dequeued", ...call, bulkhead: "b", waitMs: 3 });
    t.onPolicyEvent({ type: "lockAcquired", ...call, lock: "l", waitMs: 2 });
    t.onPolicyEvent({ type: "timeout", ...call, limit: "attempt", ms: 10 });
    t.onPolicyEvent({ type: "retryScheduled", ...call, delayMs: 10, errorCode: "UpstreamTimeout" });
    t.onPolicyEvent({ type: "breakerRejected", ...call, breaker: "gh", state: "open" });
    t.onPolicyEvent({
      type: "fallback",
      ...call,
      from: "gh__create_issue",
      to: "gl__create_issue",
      reason: "CircuitOpen",
    });
    await t.clientSpan(
      { method: "tools/call", target: "create_issue", upstream: "gh", transport: "pipe", attempt: 1 },
      () => Promise.resolve({}),
    );
    t.onPolicyEvent({ type: "attemptEnd", ...call, durationMs: 5, outcome: "success" });
    return {};
  });
  t.onPolicyEvent({ type: "breakerStateChange", breaker: "gh", from: "closed", to: "open" });
  t.recordCall({
    tool: "gh__create_issue",
    upstream: "gh",
    outcome: "ok",
    durationMs: 5,
    requestBytes: 1,
    responseBytes: 2,
  });
  t.recordCall({
    tool: "gh__create_issue",
    upstream: "gh",
    outcome: "error",
    errorCode: ErrorCode.QueueFull,
    errorClass: new GatewayError(ErrorCode.QueueFull, "full").errorClass,
    durationMs: 1,
  });
  t.upstreamStatus({ name: "gh", state: "ready", restarts: 1 });
  t.sessionOpened("tcp");
  t.sessionClosed("tcp", 10);
}

/** Metric names and label names of one PromQL expression; throws on a syntax error. */
function promql(expr: string): { metrics: string[]; labels: string[] } {
  const source = expr.replaceAll("$__rate_interval", "5m");
  const tree = parser.parse(source);
  const metrics: string[] = [];
  const labels: string[] = [];
  const errors: number[] = [];
  tree.iterate({
    enter: (node) => {
      if (node.type.isError) errors.push(node.from);
      if (node.name === "Identifier" && node.node.parent?.name === "VectorSelector") {
        metrics.push(source.slice(node.from, node.to));
      }
      if (node.name === "LabelName") labels.push(source.slice(node.from, node.to));
    },
  });
  if (errors.length) throw new Error(`PromQL syntax error at ${errors[0]} in: ${expr}`);
  return { metrics, labels };
}

function alertExprs(): string[] {
  const file = parseYaml(readFileSync("config/prometheus-alerts.yml", "utf8")) as {
    groups: Array<{ rules: Array<{ expr: string }> }>;
  };
  return file.groups.flatMap((g) => g.rules.map((r) => r.expr));
}

interface Dashboard {
  panels: Array<{ targets?: Array<{ expr: string }> }>;
  templating: { list: Array<{ definition?: string }> };
}

function dashboard(): Dashboard {
  return JSON.parse(readFileSync("config/grafana-dashboard.json", "utf8")) as Dashboard;
}

let h: ReturnType<typeof harness>;
let scrape: Scrape;
let text: string;

beforeAll(async () => {
  h = harness({ metrics: { process: true } });
  await exercise(h.telemetry);
  // Runtime metrics (event-loop delay) need a few samples of real time before they report: poll for them,
  // bounded generously (a loaded machine samples late).
  const until = Date.now() + 30_000;
  do {
    text = (await h.telemetry.scrape()) ?? "";
    if (text.includes("nodejs_eventloop_delay_p99")) break;
    await new Promise((r) => setTimeout(r, 50));
  } while (Date.now() < until);
  scrape = seriesOf(parsePrometheusText(text));
});

afterAll(async () => {
  await h.telemetry.shutdown();
});

describe("the Prometheus exposition", () => {
  it("names MCP histograms and toolgate counters as Prometheus sees them", () => {
    for (const name of [
      "mcp_server_operation_duration_bucket",
      "mcp_client_operation_duration_bucket",
      "mcp_server_session_duration_bucket",
      "toolgate_calls_total",
      "toolgate_call_errors_total",
      "toolgate_breaker_state",
      "toolgate_upstream_up",
      "process_memory_usage",
      "nodejs_eventloop_delay_p99",
    ]) {
      expect(scrape.has(name), name).toBe(true);
    }
    expect(scrape.get("toolgate_calls_total")).toEqual(
      new Set(["toolgate_tool", "toolgate_upstream", "toolgate_outcome"]),
    );
  });

  it("uses the semconv bucket bounds, in seconds", () => {
    const family = parsePrometheusText(text).get("mcp_server_operation_duration");
    const first = family?.samples.filter((s) => s.name.endsWith("_bucket")).slice(0, 18);
    expect(first?.map((s) => s.labels.le)).toEqual([
      ...["0.001", "0.0025", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10"],
      ...["30", "60", "120", "300", "+Inf"],
    ]);
  });

  it("is served by GET /metrics with the Prometheus content type", async () => {
    const res = await metricsRoutes(h.telemetry).request("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe(PROMETHEUS_CONTENT_TYPE);
    expect(parsePrometheusText(await res.text()).get("toolgate_calls_total")?.type).toBe("counter");
  });

  it("is served by the node:http handler too", async () => {
    const server = createServer((req, res) => h.telemetry.metricsHandler(req, res));
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as { port: number };
      const body = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
      expect(seriesOf(parsePrometheusText(body)).has("toolgate_upstream_restarts_total")).toBe(true);
    } finally {
      server.close();
    }
  });
});

describe("config/prometheus-alerts.yml", () => {
  const exprs = alertExprs();

  it("has rules", () => {
    expect(exprs.length).toBeGreaterThanOrEqual(6);
  });

  it.each(exprs.map((e) => [e.split("\n")[0]?.trim() ?? e, e]))(
    "uses only exported metrics and labels: %s",
    (_, expr) => {
      const { metrics, labels } = promql(expr);
      expect(metrics.length).toBeGreaterThan(0);
      const known = new Set(metrics.flatMap((m) => [...(scrape.get(m) ?? [])]));
      for (const metric of metrics) expect(scrape.has(metric), `metric ${metric}`).toBe(true);
      for (const label of labels)
        expect(known.has(label), `label ${label} of ${metrics.join(", ")}`).toBe(true);
    },
  );
});

describe("config/grafana-dashboard.json", () => {
  const board = dashboard();
  const exprs = board.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it.each(exprs.map((e) => [e]))("uses only exported metrics and labels: %s", (expr) => {
    const { metrics, labels } = promql(expr);
    expect(metrics.length).toBeGreaterThan(0);
    const known = new Set(metrics.flatMap((m) => [...(scrape.get(m) ?? [])]));
    for (const metric of metrics) expect(scrape.has(metric), `metric ${metric}`).toBe(true);
    for (const label of labels)
      expect(known.has(label), `label ${label} of ${metrics.join(", ")}`).toBe(true);
  });

  it("builds its variables from exported metrics and labels", () => {
    const definitions = board.templating.list.flatMap((v) => (v.definition ? [v.definition] : []));
    expect(definitions.length).toBe(2);
    for (const definition of definitions) {
      const match = /^label_values\((\w+)(\{.*\})?,\s*(\w+)\)$/.exec(definition);
      expect(match, definition).not.toBeNull();
      const [, metric = "", , label = ""] = match ?? [];
      expect(scrape.get(metric)?.has(label), definition).toBe(true);
    }
  });
});

describe("the strict text parser used here", () => {
  it("rejects a histogram whose +Inf bucket differs from its count", () => {
    const bad = ["# TYPE d histogram", 'd_bucket{le="1"} 2', 'd_bucket{le="+Inf"} 3', "d_sum 1", "d_count 4"];
    expect(() => parsePrometheusText(bad.join("\n"))).toThrow(/differs from the \+Inf bucket/);
  });

  it("rejects a sample outside its family and a malformed label", () => {
    expect(() => parsePrometheusText("# TYPE a gauge\nb 1")).toThrow(/outside its family/);
    expect(() => parsePrometheusText('# TYPE a gauge\na{x="1} 1')).toThrow(/label/);
  });
});
