/**
 * The Prometheus names that config/prometheus-alerts.yml and config/grafana-dashboard.json use must be the
 * ones Prometheus stores, whichever way the metrics get there: scraped from /metrics (parsed with a strict
 * text-format parser) or pushed over OTLP (the JSON a real exporter posts, named by Prometheus' OTLP
 * translation). Every PromQL expression is parsed with Prometheus' own grammar and compared with both.
 */
import { readFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { parser } from "@prometheus-io/lezer-promql";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { metricsRoutes, PROMETHEUS_CONTENT_TYPE } from "../../../src/server/status/metrics.ts";
import type { Telemetry } from "../../../src/telemetry/telemetry.ts";
import { harness } from "./harness.ts";
import { type OtlpMetricsRequest, seriesFromOtlp } from "./otlp-to-prometheus.ts";
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
  t.catalogChanged({
    tools: [{ name: "gh__create_issue", upstream: "gh" }],
    prompts: [],
    upstreams: ["gh"],
    breakers: [{ id: "gh", state: "closed" }],
  });
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
  t.observeCluster(() => ({
    instance: "replica-1",
    storeUp: true,
    latencyMs: 1,
    leasesHeld: 0,
    events: { capFallbacks: 0, locksRefused: 0, lockFallbacks: 0, leasesLost: 0 },
  }));
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

/** Labels every stored series has: Prometheus adds them at scrape time, the OTLP receiver from the resource. */
const TARGET_LABELS = ["job", "instance"];

let h: ReturnType<typeof harness>;
let scrape: Scrape;
let text: string;
let otlp: Scrape;

/**
 * Runtime metrics (event-loop delay) need a few samples of real time before they report: poll for them,
 * bounded generously (a loaded machine samples late).
 */
async function waitForRuntimeMetrics(t: Telemetry): Promise<string> {
  let body = "";
  const until = Date.now() + 30_000;
  do {
    body = (await t.scrape()) ?? "";
    if (body.includes("nodejs_eventloop_delay_p99")) break;
    await new Promise((r) => setTimeout(r, 50));
  } while (Date.now() < until);
  return body;
}

/** The OTLP path: a receiver on 127.0.0.1 takes what the exporter posts when the telemetry shuts down. */
async function pushedOverOtlp(): Promise<Scrape> {
  const requests: OtlpMetricsRequest[] = [];
  const receiver = createServer((req, res) => {
    let body = "";
    req.on("data", (chunk: Buffer) => {
      body += chunk.toString("utf8");
    });
    req.on("end", () => {
      requests.push(JSON.parse(body) as OtlpMetricsRequest);
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, "127.0.0.1", resolve));
  try {
    const { port } = receiver.address() as AddressInfo;
    const pushing = harness(
      { metrics: { process: true } },
      {
        metrics: {
          prometheus: true,
          process: true,
          otlp: {
            endpoint: `http://127.0.0.1:${port}/v1/metrics`,
            intervalMs: 3_600_000,
            protocol: "http/json",
          },
        },
      },
    );
    await exercise(pushing.telemetry);
    await waitForRuntimeMetrics(pushing.telemetry);
    await pushing.telemetry.shutdown();
  } finally {
    receiver.close();
  }
  expect(requests.length).toBeGreaterThan(0);
  return seriesFromOtlp(requests);
}

beforeAll(async () => {
  h = harness({ metrics: { process: true } });
  await exercise(h.telemetry);
  text = await waitForRuntimeMetrics(h.telemetry);
  scrape = seriesOf(parsePrometheusText(text));
  otlp = await pushedOverOtlp();
});

afterAll(async () => {
  await h.telemetry.shutdown();
});

function checkNames(series: Scrape, expr: string): void {
  const { metrics, labels } = promql(expr);
  expect(metrics.length).toBeGreaterThan(0);
  const known = new Set([...TARGET_LABELS, ...metrics.flatMap((m) => [...(series.get(m) ?? [])])]);
  for (const metric of metrics) expect(series.has(metric), `metric ${metric}`).toBe(true);
  for (const label of labels) expect(known.has(label), `label ${label} of ${metrics.join(", ")}`).toBe(true);
}

const PATHS = [
  ["/metrics", () => scrape],
  ["OTLP", () => otlp],
] as const;

describe("the Prometheus exposition", () => {
  it("names MCP histograms and toolgate counters as Prometheus sees them", () => {
    for (const name of [
      "mcp_server_operation_duration_seconds_bucket",
      "mcp_client_operation_duration_seconds_bucket",
      "mcp_server_session_duration_seconds_bucket",
      "toolgate_call_duration_seconds_bucket",
      "toolgate_call_request_size_bytes_bucket",
      "toolgate_calls_total",
      "toolgate_call_errors_total",
      "toolgate_breaker_state",
      "toolgate_upstream_up",
      "toolgate_build_info",
      "process_memory_usage",
      "nodejs_eventloop_delay_p99_seconds",
    ]) {
      expect(scrape.has(name), name).toBe(true);
    }
    expect(scrape.get("toolgate_calls_total")).toEqual(
      new Set(["toolgate_tool", "toolgate_upstream", "toolgate_outcome"]),
    );
  });

  it("reports the event loop's delay beyond its 50 ms sampling interval, not the interval itself", () => {
    const families = parsePrometheusText(text);
    const value = (name: string) => families.get(name)?.samples[0]?.value ?? Number.NaN;
    const [min, p50, p99, max] = ["min", "p50", "p99", "max"].map((q) =>
      value(`nodejs_eventloop_delay_${q}_seconds`),
    );
    // Node's histogram reads at least the interval (about 0.05 s here) for every sample, even on an idle loop;
    // the smallest delay of a window is near 0 unless the loop never got a free moment in it.
    expect(min).toBeGreaterThanOrEqual(0);
    expect(min).toBeLessThan(0.02);
    expect(min).toBeLessThanOrEqual(p50 as number);
    expect(p50).toBeLessThanOrEqual(p99 as number);
    expect(p99).toBeLessThanOrEqual(max as number);
  });

  it("uses the semconv bucket bounds, in seconds", () => {
    const family = parsePrometheusText(text).get("mcp_server_operation_duration_seconds");
    const first = family?.samples.filter((s) => s.name.endsWith("_bucket")).slice(0, 18);
    expect(first?.map((s) => s.labels.le)).toEqual([
      ...["0.001", "0.0025", "0.005", "0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1", "2", "5", "10"],
      ...["30", "60", "120", "300", "+Inf"],
    ]);
  });

  it("has the same series names as the OTLP path, with the resource's job and instance there", () => {
    // GC durations appear only once a collection has run, which differs between the two processes' runs.
    const names = (series: Scrape) =>
      [...series.keys()].filter((n) => n !== "target_info" && !n.startsWith("v8js_gc_")).sort();
    expect(names(scrape)).toEqual(names(otlp));
    expect(otlp.get("toolgate_calls_total")).toEqual(
      new Set(["job", "instance", "toolgate_tool", "toolgate_upstream", "toolgate_outcome"]),
    );
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

  it.each(
    PATHS.flatMap(([path, series]) =>
      exprs.map((e) => [path, e.split("\n")[0]?.trim() ?? e, e, series] as const),
    ),
  )("uses only metrics and labels Prometheus stores via %s: %s", (_, __, expr, series) =>
    checkNames(series(), expr),
  );
});

describe("config/grafana-dashboard.json", () => {
  const board = dashboard();
  const exprs = board.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));

  it.each(PATHS.flatMap(([path, series]) => exprs.map((e) => [path, e, series] as const)))(
    "uses only metrics and labels Prometheus stores via %s: %s",
    (_, expr, series) => checkNames(series(), expr),
  );

  it("keeps job and instance in every aggregation and selects only toolgate's processes", () => {
    for (const expr of exprs) {
      for (const by of expr.matchAll(/by \(([^)]*)\)/g)) expect(by[1], expr).toMatch(/^job, instance\b/);
      expect(expr, expr).toMatch(/job=~"\$job",instance=~"\$instance"/);
      if (!/^(toolgate|mcp)_/.test(promql(expr).metrics[0] ?? ""))
        expect(expr).toContain("toolgate_build_info");
    }
  });

  it("builds its variables from exported metrics and labels", () => {
    const definitions = board.templating.list.flatMap((v) => (v.definition ? [v.definition] : []));
    expect(definitions.length).toBe(4);
    for (const definition of definitions) {
      const match = /^label_values\((\w+)(\{.*\})?,\s*(\w+)\)$/.exec(definition);
      expect(match, definition).not.toBeNull();
      const [, metric = "", , label = ""] = match ?? [];
      for (const [path, series] of PATHS) {
        const labels = new Set([...TARGET_LABELS, ...(series().get(metric) ?? [])]);
        expect(series().has(metric) && labels.has(label), `${definition} via ${path}`).toBe(true);
      }
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
