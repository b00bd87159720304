import { describe, expect, it } from "vitest";
import { statusRoutes } from "../../../src/server/status/routes.ts";
import { type StatusReport, type StatusSource, statusSource } from "../../../src/server/status/source.ts";
import type { Alert } from "../../../src/telemetry/alerts.ts";
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

describe("the status page", () => {
  it.each(["/", "/ui"])("is served at %s as one self-contained HTML document", async (path) => {
    const res = await statusRoutes(source).request(path);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    const html = await res.text();
    expect(html.startsWith("<!doctype html>")).toBe(true);
    // No external assets: no linked stylesheets, script sources or absolute URLs.
    expect(html).not.toMatch(/<link\b|<script\s+src|https?:\/\//i);
    for (const id of ["summary", "upstreams", "tools", "breakers", "recent", "firing", "filter"]) {
      expect(html).toContain(`id="${id}"`);
    }
    expect(html).toContain('fetch("./status"');
  });

  it("never renders data as markup", async () => {
    const html = await (await statusRoutes(source).request("/")).text();
    expect(html).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  });
});
