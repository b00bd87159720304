import { describe, expect, it } from "vitest";
import { RollingStats } from "../../../src/telemetry/stats.ts";

function clock(start = 1_000_000) {
  const c = { t: start, now: () => c.t };
  return c;
}

describe("RollingStats", () => {
  it("reports p50/p95/p99 within the sketch's 5% relative error", () => {
    const c = clock();
    const stats = new RollingStats({ now: c.now });
    // 1 … 1000 ms once each: exact nearest-rank percentiles are 500, 950 and 990.
    for (let ms = 1; ms <= 1000; ms++) stats.record("t", "u", "ok", ms);
    const s = stats.get("t");
    expect(s?.calls).toBe(1000);
    expect(Math.abs((s?.p50Ms ?? 0) / 500 - 1)).toBeLessThan(0.05);
    expect(Math.abs((s?.p95Ms ?? 0) / 950 - 1)).toBeLessThan(0.05);
    expect(Math.abs((s?.p99Ms ?? 0) / 990 - 1)).toBeLessThan(0.05);
  });

  it("sees a slow tail that the median hides", () => {
    const stats = new RollingStats({ now: clock().now });
    for (let i = 0; i < 97; i++) stats.record("t", "u", "ok", 10);
    for (let i = 0; i < 3; i++) stats.record("t", "u", "ok", 5_000);
    const s = stats.get("t");
    expect(Math.abs((s?.p50Ms ?? 0) / 10 - 1)).toBeLessThan(0.05);
    expect(s?.p99Ms).toBeGreaterThan(4_750);
  });

  it("counts failures in the error rate and tool errors apart", () => {
    const stats = new RollingStats({ now: clock().now });
    stats.record("t", "u", "ok", 1);
    stats.record("t", "u", "tool_error", 1);
    stats.record("t", "u", "error", 1);
    stats.record("t", "u", "error", 1);
    expect(stats.get("t")).toMatchObject({ calls: 4, errors: 2, toolErrors: 1, errorRate: 0.5 });
  });

  it("forgets calls older than the window", () => {
    const c = clock();
    const stats = new RollingStats({ windowMs: 60_000, slots: 6, now: c.now });
    stats.record("t", "u", "error", 1);
    c.t += 30_000;
    stats.record("t", "u", "ok", 1);
    expect(stats.get("t")?.calls).toBe(2);
    c.t += 35_000;
    expect(stats.get("t")).toMatchObject({ calls: 1, errors: 0 });
    c.t += 60_000;
    expect(stats.get("t")).toMatchObject({ calls: 0, p50Ms: null, errorRate: 0 });
  });

  it("reuses a ring slot after a full turn without leaking its old counts", () => {
    const c = clock(0);
    const stats = new RollingStats({ windowMs: 10_000, slots: 10, now: c.now });
    stats.record("t", "u", "error", 1);
    c.t += 10_000; // same ring index, next turn
    stats.record("t", "u", "ok", 1);
    expect(stats.get("t")).toMatchObject({ calls: 1, errors: 0 });
  });

  it("sums only the slots inside a shorter window", () => {
    const c = clock(0);
    const stats = new RollingStats({ windowMs: 300_000, slots: 10, now: c.now });
    stats.record("t", "u", "ok", 1);
    c.t += 120_000;
    stats.record("t", "u", "ok", 1);
    expect(stats.get("t", 60_000)?.calls).toBe(1);
    expect(stats.get("t")?.calls).toBe(2);
  });

  it("keeps in-flight and queued gauges at zero or above", () => {
    const stats = new RollingStats({ now: clock().now });
    stats.adjust("t", "u", "inFlight", 2);
    stats.adjust("t", "u", "queued", -1);
    expect(stats.get("t")).toMatchObject({ inFlight: 2, queued: 0, calls: 0 });
  });

  it("lists tools by name and forgets those that left the catalog", () => {
    const stats = new RollingStats({ now: clock().now });
    stats.record("b", "u", "ok", 1);
    stats.record("a", "u", "ok", 1);
    expect(stats.snapshot().map((s) => s.tool)).toEqual(["a", "b"]);
    stats.retain(new Set(["b"]));
    expect(stats.snapshot().map((s) => s.tool)).toEqual(["b"]);
  });
});
