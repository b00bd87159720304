import { describe, expect, it } from "vitest";
import { History } from "../../../src/telemetry/history.ts";

function clocked(start = 1_000_000) {
  let now = start;
  let cpu = 0;
  const history = new History({
    stepMs: 1_000,
    points: 5,
    now: () => now,
    sampleProcess: () => ({ cpuSeconds: cpu, rssBytes: 50_000_000 }),
  });
  return {
    history,
    tick(ms: number, cpuSeconds = 0) {
      now += ms;
      cpu += cpuSeconds;
    },
  };
}

describe("History", () => {
  it("closes one point per step with calls, errors and the step's p95", () => {
    const { history, tick } = clocked();
    for (let i = 0; i < 19; i++) history.record("t", "ok", 10);
    history.record("t", "error", 1_000);
    tick(1_000);
    history.record("t", "tool_error", 5);
    tick(1_000);
    const snap = history.snapshot();
    expect(snap.tools.t?.calls).toEqual([0, 0, 0, 20, 1]);
    expect(snap.tools.t?.errors).toEqual([0, 0, 0, 1, 0]);
    const p95 = snap.tools.t?.p95Ms ?? [];
    expect(p95.slice(0, 3)).toEqual([null, null, null]);
    expect(p95[3]).toBeGreaterThan(9);
    expect(p95[3]).toBeLessThan(11);
    expect(snap.gateway.calls).toEqual([0, 0, 0, 20, 1]);
    expect(history.totals("t")).toEqual({ calls: 21, errors: 1, toolErrors: 1 });
    expect(history.gatewayTotals()).toEqual({ calls: 21, errors: 1, toolErrors: 1 });
  });

  it("keeps the most calls in flight and queued of each step", () => {
    const { history, tick } = clocked();
    history.gauge("t", "inFlight", 1);
    history.gauge("t", "inFlight", 1);
    history.gauge("t", "inFlight", -1);
    history.gauge("t", "queued", 3);
    history.gauge("t", "queued", -3);
    tick(1_000);
    tick(1_000);
    const snap = history.snapshot();
    expect(snap.tools.t?.inFlight.slice(-2)).toEqual([2, 1]);
    expect(snap.tools.t?.queued.slice(-2)).toEqual([3, 0]);
  });

  it("fills quiet steps, keeps only the configured points, and samples CPU and memory", () => {
    const { history, tick } = clocked();
    history.record("t", "ok", 1);
    tick(1_000, 0.5);
    tick(9_000, 0.9);
    const snap = history.snapshot();
    expect(snap.tools.t?.calls).toEqual([0, 0, 0, 0, 0]);
    expect(snap.gateway.rssBytes).toEqual([50_000_000, 50_000_000, 50_000_000, 50_000_000, 50_000_000]);
    // 1.4 CPU seconds over 10 s of wall time: 14% of one core, for every step of the gap.
    expect(snap.gateway.cpuPercent).toEqual([14, 14, 14, 14, 14]);
    expect(snap.end % 1_000).toBe(0);
  });

  it("forgets tools that left the catalog", () => {
    const { history } = clocked();
    history.record("a", "ok", 1);
    history.record("b", "ok", 1);
    history.retain(new Set(["b"]));
    expect(Object.keys(history.snapshot().tools)).toEqual(["b"]);
  });
});
