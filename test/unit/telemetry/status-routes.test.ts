import { describe, expect, it } from "vitest";
import { statusRoutes } from "../../../src/server/status/routes.ts";
import { type StatusReport, type StatusSource, statusSource } from "../../../src/server/status/source.ts";
import type { Alert } from "../../../src/telemetry/alerts.ts";
import { History } from "../../../src/telemetry/history.ts";
import { harness } from "./harness.ts";

const alert: Alert = {
  id: "breakerOpen:gh",
  rule: "breakerOpen",
  subject: "gh",
  severity: "critical",
  message: 'circuit breaker "gh" is open: calls fail fast',
  value: 1,
  threshold: 1,
  state: "firing",
  firedAt: Date.parse("2026-11-25T12:00:00Z"),
};

const source: StatusSource = {
  service: { name: "toolgate", version: "0.1.0" },
  statsWindowMs: 300_000,
  upstreams: () => [
    { name: "gh", state: "ready", transport: "stdio", restarts: 1, tools: 2 },
    {
      name: "fs",
      state: "down",
      transport: "http",
      restarts: 0,
      lastError: "connect ECONNREFUSED 127.0.0.1:9",
    },
  ],
  tools: () => [
    { name: "gh__create_issue", upstream: "gh", description: "Create an issue" },
    { name: "gh__search", upstream: "gh" },
  ],
  breakers: () => [{ id: "gh", state: "open", nextAttemptAt: "2026-11-25T12:00:15.000Z" }],
  toolStats: () => [
    {
      tool: "gh__create_issue",
      upstream: "gh",
      calls: 10,
      errors: 4,
      toolErrors: 1,
      errorRate: 0.4,
      p50Ms: 12,
      p95Ms: 80,
      p99Ms: 95,
      inFlight: 2,
      queued: 1,
    },
  ],
  activeAlerts: () => [alert],
  recentAlerts: () => [alert],
};

describe("GET /status", () => {
  it("joins the catalog with the tool stats, zeros for tools not called yet", async () => {
    const res = await statusRoutes(source).request("/status");
    expect(res.status).toBe(200);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const report = (await res.json()) as StatusReport;
    expect(report.tools).toEqual([
      {
        name: "gh__create_issue",
        upstream: "gh",
        description: "Create an issue",
        calls: 10,
        errors: 4,
        toolErrors: 1,
        errorRate: 0.4,
        p50Ms: 12,
        p95Ms: 80,
        p99Ms: 95,
        inFlight: 2,
        queued: 1,
      },
      {
        name: "gh__search",
        upstream: "gh",
        calls: 0,
        errors: 0,
        toolErrors: 0,
        errorRate: 0,
        p50Ms: null,
        p95Ms: null,
        p99Ms: null,
        inFlight: 0,
        queued: 0,
      },
    ]);
  });

  it("reports upstreams, breakers with their next trial, and alerts", async () => {
    const report = (await (await statusRoutes(source).request("/status")).json()) as StatusReport;
    expect(report.service).toEqual({ name: "toolgate", version: "0.1.0" });
    expect(report.statsWindowMs).toBe(300_000);
    expect(report.upstreams.map((u) => `${u.name}:${u.state}`)).toEqual(["gh:ready", "fs:down"]);
    expect(report.breakers).toEqual([{ id: "gh", state: "open", nextAttemptAt: "2026-11-25T12:00:15.000Z" }]);
    expect(report.alerts.active.map((a) => a.id)).toEqual(["breakerOpen:gh"]);
    expect(Number.isNaN(Date.parse(report.generatedAt))).toBe(false);
  });

  it("reads a live telemetry's stats and alerts through statusSource()", async () => {
    const h = harness();
    try {
      h.telemetry.recordCall({ tool: "gh__search", upstream: "gh", outcome: "error", durationMs: 40 });
      const live = statusSource(
        { upstreams: () => [], tools: () => [{ name: "gh__search", upstream: "gh" }], breakers: () => [] },
        h.telemetry,
      );
      const report = (await (await statusRoutes(live).request("/status")).json()) as StatusReport;
      expect(report.tools[0]).toMatchObject({ name: "gh__search", calls: 1, errors: 1, errorRate: 1 });
      expect(report.statsWindowMs).toBe(h.telemetry.stats.windowMs);
    } finally {
      await h.telemetry.shutdown();
    }
  });
});

describe("running tasks and held calls in the report", () => {
  // A held call as the approval queue keeps it: its arguments must not reach the report.
  const pending = {
    id: "h1",
    tool: "gh__delete",
    upstream: "gh",
    principal: "alice",
    arguments: '{"repo":"secret"}',
    createdAt: "2026-11-25T12:00:05.000Z",
  };
  const work: StatusSource = {
    ...source,
    runningTasks: async () => [
      task("t2", "2026-11-25T12:00:02.000Z", "working", "waiting for lock db"),
      task("t1", "2026-11-25T12:00:01.000Z", "working", "queued: waiting for a slot of gh (2 waiting)"),
      task("t3", "2026-11-25T12:00:03.000Z", "input_required", "waiting for an operator's approval (x)"),
      task(
        "t4",
        "2026-11-25T12:00:04.000Z",
        "input_required",
        "waiting for the client to answer elicitation/create",
      ),
    ],
    heldCalls: () => [pending],
  };

  it("lists tasks oldest first with what each waits for, and no handle, arguments or result", async () => {
    const report = (await (await statusRoutes(work).request("/status")).json()) as StatusReport;
    expect(report.tasks?.map((t) => `${t.id}:${t.phase}`)).toEqual([
      "t1:queued",
      "t2:waiting for lock",
      "t3:waiting for approval",
      "t4:input required",
    ]);
    expect(report.tasks?.[0]).toEqual({
      id: "t1",
      tool: "gh__search",
      upstream: "gh",
      principal: "alice",
      status: "working",
      phase: "queued",
      message: "queued: waiting for a slot of gh (2 waiting)",
      createdAt: "2026-11-25T12:00:01.000Z",
      lastUpdatedAt: "2026-11-25T12:00:01.000Z",
    });
  });

  it("lists held calls without their arguments (GET /approvals shows those to approvals.operators)", async () => {
    const report = (await (await statusRoutes(work).request("/status")).json()) as StatusReport;
    expect(report.approvals).toEqual([
      {
        id: "h1",
        tool: "gh__delete",
        upstream: "gh",
        principal: "alice",
        createdAt: "2026-11-25T12:00:05.000Z",
      },
    ]);
    expect(JSON.stringify(report)).not.toContain("secret");
  });

  it("says why the tasks are missing when the task store fails, and reports the rest", async () => {
    const failing: StatusSource = {
      ...source,
      runningTasks: () => Promise.reject(new Error("redis down")),
    };
    const res = await statusRoutes(failing).request("/status");
    expect(res.status).toBe(200);
    const report = (await res.json()) as StatusReport;
    expect(report.tasks).toBeUndefined();
    expect(report.tasksError).toBe("the task store did not answer: redis down");
    expect(report.tools).toHaveLength(2);
  });

  it("leaves both out when the source has no task service or approval queue", async () => {
    const report = (await (await statusRoutes(source).request("/status")).json()) as StatusReport;
    expect(report.tasks).toBeUndefined();
    expect(report.approvals).toBeUndefined();
  });
});

function task(taskId: string, createdAt: string, status: string, message: string) {
  return {
    taskId,
    tool: "gh__search",
    upstream: "gh",
    principalId: "alice",
    createdAt,
    status,
    message,
    lastUpdatedAt: createdAt,
    handle: "sealed-handle",
    outcome: undefined,
  };
}

describe("the status page", () => {
  it.each(["/", "/ui"])("is served at %s as one self-contained HTML document", async (path) => {
    const res = await statusRoutes(source).request(path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await res.text();
    expect(html.startsWith("<!doctype html>")).toBe(true);
    // No external assets: no linked stylesheets, script sources or absolute URLs.
    // The SVG namespace is a name, not something fetched.
    const loaded = html.replaceAll("http://www.w3.org/2000/svg", "");
    expect(loaded).not.toMatch(/<link\b|<script\s+src|https?:\/\//i);
    for (const id of ["summary", "trends", "upstreams", "tools", "breakers", "recent", "firing", "filter"]) {
      expect(html).toContain(`id="${id}"`);
    }
    expect(html).toContain('new EventSource("./status/stream');
  });

  it("never renders data as markup", async () => {
    const html = await (await statusRoutes(source).request("/")).text();
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });
});

describe("GET /status/stream", () => {
  it("pushes status events as Server-Sent Events, with the last hour and totals", async () => {
    const history = new History({ stepMs: 60_000, points: 3 });
    history.record("gh__create_issue", "error", 12);
    const res = await statusRoutes({ ...source, history }).request("/status/stream?interval=250");
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = "";
    while (!text.includes("\n\n")) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text).toMatch(/^event: status\ndata: .*\nid: 1\n\n$/);
    const report = JSON.parse(/data: (.*)\n/.exec(text)?.[1] ?? "{}") as StatusReport;
    expect(report.history?.gateway.calls).toHaveLength(3);
    expect(report.totals).toMatchObject({ calls: 1, errors: 1 });
    expect(report.tools.find((t) => t.name === "gh__create_issue")?.totals).toEqual({
      calls: 1,
      errors: 1,
      toolErrors: 0,
    });
  });

  it("adds the last hour to /status only when asked", async () => {
    const history = new History();
    const plain = (await (
      await statusRoutes({ ...source, history }).request("/status")
    ).json()) as StatusReport;
    expect(plain.history).toBeUndefined();
    const full = (await (
      await statusRoutes({ ...source, history }).request("/status?history=1")
    ).json()) as StatusReport;
    expect(full.history?.gateway.cpuPercent).toHaveLength(120);
  });
});
