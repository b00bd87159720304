import { createServer, type IncomingMessage } from "node:http";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AlertRulesSchema } from "../../../src/config/telemetry-schema.ts";
import { type Alert, AlertManager, type AlertManagerOptions } from "../../../src/telemetry/alerts.ts";
import { createLogger } from "../../../src/telemetry/log.ts";
import { RollingStats } from "../../../src/telemetry/stats.ts";
import type { BreakerView, GatewayView, ToolView, UpstreamView } from "../../../src/telemetry/view.ts";

function fakeView() {
  const view = {
    upstreams: [] as UpstreamView[],
    tools: [] as ToolView[],
    breakers: [] as BreakerView[],
  };
  const gateway: GatewayView = {
    upstreams: () => view.upstreams,
    tools: () => view.tools,
    breakers: () => view.breakers,
  };
  return { view, gateway };
}

function setup(rules: Record<string, unknown> = {}, extra: Partial<AlertManagerOptions> = {}) {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ sink: (line) => lines.push(JSON.parse(line)) });
  const stats = new RollingStats();
  const manager = new AlertManager({
    rules: AlertRulesSchema.parse({ intervalMs: 1_000, ...rules }),
    stats,
    logger,
    eventLoopP99Ms: () => 0,
    ...extra,
  });
  return { manager, stats, lines, ...fakeView() };
}

beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-11-25T12:00:00Z") });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("AlertManager", () => {
  it("fires on a tool's error rate above the threshold once the volume is there, then resolves", () => {
    const { manager, stats, gateway, lines } = setup({ errorRate: { thresholdPercent: 20, minCalls: 10 } });
    for (let i = 0; i < 9; i++) stats.record("gh__x", "gh", "error", 5);
    expect(manager.evaluate(gateway)).toEqual([]); // 9 calls: below the minimum volume

    stats.record("gh__x", "gh", "ok", 5);
    const [fired] = manager.evaluate(gateway);
    expect(fired).toMatchObject({ id: "errorRate:gh__x", state: "firing", value: 90, threshold: 20 });
    expect(fired?.message).toContain('tool "gh__x" (upstream "gh"): 90% of 10 calls failed');
    expect(manager.evaluate(gateway)).toEqual([]); // still firing: no second notification
    expect(lines.filter((l) => l.level === "warn")).toHaveLength(1);

    vi.advanceTimersByTime(301_000); // the failures leave the window
    const [resolved] = manager.evaluate(gateway);
    expect(resolved).toMatchObject({ id: "errorRate:gh__x", state: "resolved" });
    expect(manager.active()).toEqual([]);
    expect(manager.recent().map((a) => a.state)).toEqual(["resolved", "firing"]);
  });

  it("does not count tool errors (isError results) in the error rate", () => {
    const { manager, stats, gateway } = setup({ errorRate: { minCalls: 1 } });
    for (let i = 0; i < 30; i++) stats.record("t", "u", "tool_error", 5);
    expect(manager.evaluate(gateway)).toEqual([]);
  });

  it("fires when a tool's p95 latency passes the threshold", () => {
    const { manager, stats, gateway } = setup({ latency: { p95Ms: 1_000, minCalls: 20 } });
    for (let i = 0; i < 19; i++) stats.record("slow", "u", "ok", 100);
    stats.record("slow", "u", "ok", 8_000);
    expect(manager.evaluate(gateway)).toEqual([]); // p95 is the 19th of 20 calls: 100 ms
    stats.record("slow", "u", "ok", 8_000); // now the 20th of 21: 8 s
    expect(manager.evaluate(gateway)).toMatchObject([{ id: "latency:slow", severity: "warning" }]);
  });

  it("fires while a breaker is open or half-open and resolves when it closes", () => {
    const { manager, gateway, view } = setup();
    view.breakers = [{ id: "gh", state: "open", nextAttemptAt: new Date(Date.now() + 15_000).toISOString() }];
    const [alert] = manager.evaluate(gateway);
    expect(alert).toMatchObject({ id: "breakerOpen:gh", severity: "critical" });
    expect(alert?.message).toContain("next trial call at 2026-11-25T12:00:15.000Z");
    // Half-open after the reset timeout: not recovered, so the alert stays (no fire/resolve per cycle).
    view.breakers = [{ id: "gh", state: "halfOpen" }];
    expect(manager.evaluate(gateway)).toEqual([]);
    expect(manager.active().map((a) => a.id)).toEqual(["breakerOpen:gh"]);
    view.breakers = [{ id: "gh", state: "open" }];
    expect(manager.evaluate(gateway)).toEqual([]);
    view.breakers = [{ id: "gh", state: "closed" }];
    expect(manager.evaluate(gateway)).toMatchObject([{ id: "breakerOpen:gh", state: "resolved" }]);
  });

  it("fires for an upstream only after it has been down for forMs, and never for a stopped one", () => {
    const { manager, gateway, view } = setup({ upstreamDown: { forMs: 30_000 } });
    view.upstreams = [
      { name: "gh", state: "down", restarts: 2, lastError: "spawn gh-mcp ENOENT" },
      { name: "off", state: "stopped", restarts: 0 },
    ];
    expect(manager.evaluate(gateway)).toEqual([]);
    vi.advanceTimersByTime(29_000);
    expect(manager.evaluate(gateway)).toEqual([]);
    vi.advanceTimersByTime(1_000);
    const [alert] = manager.evaluate(gateway);
    expect(alert?.message).toBe('upstream "gh" has been down for 30s: spawn gh-mcp ENOENT');
    view.upstreams = [{ name: "gh", state: "ready", restarts: 3 }];
    expect(manager.evaluate(gateway)).toMatchObject([{ id: "upstreamDown:gh", state: "resolved" }]);
  });

  it("fires when a tool's queue fills past the threshold", () => {
    const { manager, stats, gateway, view } = setup({ queueSaturation: { thresholdPercent: 80 } });
    view.tools = [{ name: "t", upstream: "u", queueSize: 10 }];
    stats.adjust("t", "u", "queued", 7);
    expect(manager.evaluate(gateway)).toEqual([]);
    stats.adjust("t", "u", "queued", 1);
    expect(manager.evaluate(gateway)).toMatchObject([{ id: "queueSaturation:t", value: 80 }]);
  });

  it("fires on event-loop lag above the threshold", () => {
    let lag = 50;
    const { manager, gateway } = setup({ eventLoopLag: { p99Ms: 200 } }, { eventLoopP99Ms: () => lag });
    expect(manager.evaluate(gateway)).toEqual([]);
    lag = 450;
    expect(manager.evaluate(gateway)).toMatchObject([{ id: "eventLoopLag:process", value: 450 }]);
  });

  it("evaluates on its interval once started, and not after stop", () => {
    const { manager, gateway, view } = setup({ intervalMs: 5_000 });
    manager.start(gateway);
    view.breakers = [{ id: "b", state: "open" }];
    vi.advanceTimersByTime(4_999);
    expect(manager.active()).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(manager.active().map((a) => a.id)).toEqual(["breakerOpen:b"]);
    manager.stop();
    view.breakers = [];
    vi.advanceTimersByTime(60_000);
    expect(manager.active().map((a) => a.id)).toEqual(["breakerOpen:b"]);
  });

  it("keeps the recent list bounded, newest first", () => {
    const { manager, gateway, view } = setup({}, { recentLimit: 3 });
    for (let i = 0; i < 5; i++) {
      view.breakers = [{ id: `b${i}`, state: "open" }];
      manager.evaluate(gateway);
    }
    expect(manager.recent().map((a) => `${a.id} ${a.state}`)).toEqual([
      "breakerOpen:b4 firing",
      "breakerOpen:b3 resolved",
      "breakerOpen:b3 firing",
    ]);
  });

  it("does nothing when alerts are disabled", () => {
    const { manager, gateway, view } = setup({ enabled: false });
    manager.start(gateway);
    view.breakers = [{ id: "b", state: "open" }];
    vi.advanceTimersByTime(60_000);
    expect(manager.active()).toEqual([]);
  });
});

describe("alert webhook", () => {
  it("POSTs firing and resolved alerts as JSON", async () => {
    vi.useRealTimers();
    const received: Array<{ service: string; alert: Alert }> = [];
    let arrived: () => void = () => {};
    const server = createServer((req: IncomingMessage, res) => {
      let body = "";
      req.on("data", (chunk) => {
        body += chunk;
      });
      req.on("end", () => {
        received.push(JSON.parse(body));
        res.end();
        arrived();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    try {
      const { port } = server.address() as { port: number };
      const { manager, gateway, view } = setup(
        {},
        { webhook: `http://127.0.0.1:${port}/hook`, service: "tg" },
      );
      const twoPosts = new Promise<void>((resolve) => {
        arrived = () => received.length === 2 && resolve();
      });
      view.breakers = [{ id: "gh", state: "open" }];
      manager.evaluate(gateway);
      view.breakers = [];
      manager.evaluate(gateway);
      await twoPosts;
      expect(received.map((r) => `${r.service} ${r.alert.id} ${r.alert.state}`).sort()).toEqual([
        "tg breakerOpen:gh firing",
        "tg breakerOpen:gh resolved",
      ]);
    } finally {
      server.close();
    }
  });

  it("logs a warning and carries on when the webhook cannot be reached", async () => {
    vi.useRealTimers();
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const { port } = server.address() as { port: number };
    await new Promise<void>((resolve) => server.close(() => resolve())); // nothing listens there now
    const { manager, gateway, view, lines } = setup({}, { webhook: `http://127.0.0.1:${port}/hook` });
    view.breakers = [{ id: "gh", state: "open" }];
    expect(manager.evaluate(gateway)).toHaveLength(1);
    await vi.waitFor(() =>
      expect(lines.some((l) => String(l.msg).startsWith("alert webhook failed"))).toBe(true),
    );
  });
});
