/**
 * The gateway's own aggregation of its per-call metrics (src/telemetry/aggregation.ts) must export exactly
 * what the OTel instruments export for the same records: the Prometheus text of /metrics byte for byte, and
 * the collected ResourceMetrics (names, units, descriptions, buckets, attributes, temporality, start and end
 * times, order). Both gateways run the same calls on a fake clock, one with `nativeMetrics: false`.
 */
import { AggregationTemporality } from "@opentelemetry/sdk-metrics";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { aggregatesNatively } from "../../../src/telemetry/aggregation.ts";
import type { Telemetry } from "../../../src/telemetry/telemetry.ts";
import { type Harness, harness, TestMetricReader } from "./harness.ts";

const ms = (n: number) => vi.advanceTimersByTime(n);
const toolCall = { method: "tools/call", target: "gh__create_issue", transport: "tcp" } as const;
const attempt = { tool: "gh__create_issue", upstream: "gh", attempt: 1 } as const;

/** Calls and events that touch every hot instrument, every outcome, bucket bounds and the overflow bucket. */
async function firstRound(t: Telemetry) {
  t.catalogChanged({
    tools: [
      { name: "gh__create_issue", upstream: "gh" },
      { name: "fs__read", upstream: "fs" },
    ],
    prompts: ["greet"],
    upstreams: ["gh", "fs"],
    breakers: [{ id: "gh", state: "closed" }],
  });
  ms(7);
  t.clientOperation({ method: "tools/list", upstream: "gh", transport: "pipe" }, 12);
  t.clientOperation({ method: "tools/list", upstream: "fs", transport: "tcp" }, 3, new Error("down"));
  for (const [waitMs, result] of [
    [5, { content: [] }], // exactly on the 5 ms bound: upper-inclusive
    [1, { content: [], isError: true }],
    [250, { content: [], isError: true, _meta: { "toolgate/error": { code: "Timeout", message: "slow" } } }],
  ] as const) {
    await t.serverSpan({ ...toolCall, protocolVersion: "2025-11-25", meta: {} }, async () => {
      t.onPolicyEvent({ type: "attemptStart", ...attempt });
      const r = await t.clientSpan(
        { method: "tools/call", target: "create_issue", upstream: "gh", transport: "pipe", attempt: 1 },
        async () => {
          ms(waitMs);
          return result;
        },
      );
      t.onPolicyEvent({ type: "attemptEnd", ...attempt, durationMs: waitMs, outcome: "success" });
      return r;
    });
    ms(3);
  }
  await expect(
    t.serverSpan(toolCall, () =>
      t.clientSpan(
        { method: "tools/call", target: "create_issue", upstream: "gh", transport: "pipe", attempt: 2 },
        async () => {
          ms(40);
          throw new GatewayError(ErrorCode.UpstreamTimeout, "late");
        },
      ),
    ),
  ).rejects.toThrow("late");
  await t.serverSpan({ method: "tools/call", target: "nope", transport: "pipe" }, async () => ({}));
  await t.serverSpan({ method: "prompts/get", target: "greet", transport: "tcp" }, async () => ({}));
  await t.serverSpan({ method: "resources/read", target: "file:///a", transport: "tcp" }, async () => ({}));
  await t.serverSpan({ method: "x/custom", transport: "tcp" }, async () => ({}));
  const gh = { tool: "gh__create_issue", upstream: "gh" };
  t.recordCall({ ...gh, outcome: "ok", durationMs: 5, requestBytes: 1024, responseBytes: 32 });
  t.recordCall({ ...gh, outcome: "tool_error", durationMs: 0.2, requestBytes: 0, responseBytes: 20_000_000 });
  t.recordCall({
    ...gh,
    outcome: "error",
    errorCode: ErrorCode.UpstreamTimeout,
    errorClass: "transient",
    durationMs: 301_000,
  });
  ms(11);
  t.recordCall({ tool: "fs__read", upstream: "fs", outcome: "ok", durationMs: 60_000 });
}

/** After a first collection: more of the same series and new ones (appended in first-record order). */
async function secondRound(t: Telemetry) {
  ms(1000);
  t.recordCall({ tool: "fs__read", upstream: "fs", outcome: "error", durationMs: 2, requestBytes: 300 });
  t.recordCall({ tool: "gh__create_issue", upstream: "gh", outcome: "ok", durationMs: 0.001 });
  await t.serverSpan({ method: "tools/list", transport: "pipe" }, async () => ({ tools: [] }));
  t.clientOperation({ method: "prompts/list", upstream: "fs", transport: "tcp" }, 1);
}

async function outputs(h: Harness) {
  const { resourceMetrics } = await h.metrics.collect();
  return { text: await h.telemetry.scrape(), scopes: resourceMetrics.scopeMetrics };
}

describe.each([{ tracing: false }, { tracing: true }])(
  "native aggregation (tracing: $tracing)",
  ({ tracing }) => {
    let native: Harness;
    let reference: Harness;
    beforeEach(() => {
      vi.useFakeTimers({ toFake: ["Date", "performance"], now: Date.UTC(2026, 11, 2, 5) });
      const extra = { tracing, serviceInstanceId: "i-1" };
      native = harness({}, extra);
      reference = harness({}, { ...extra, nativeMetrics: false });
    });
    afterEach(async () => {
      vi.useRealTimers();
      await Promise.all([native.telemetry.shutdown(), reference.telemetry.shutdown()]);
    });

    it("exports the Prometheus text and the collected metrics of the OTel instruments, collection after collection", async () => {
      // The native path is on (the reader's producer is wrapped) for one and off for the other.
      expect(Object.hasOwn(native.metrics, "setMetricProducer")).toBe(true);
      expect(Object.hasOwn(reference.metrics, "setMetricProducer")).toBe(false);
      for (const round of [firstRound, secondRound]) {
        // Both gateways live the round at the same times.
        const start = Date.now();
        const run = async (h: Harness) => {
          vi.setSystemTime(start);
          await round(h.telemetry);
          ms(5);
          return outputs(h);
        };
        const got = await run(native);
        const want = await run(reference);
        expect(got.text).toContain("toolgate_calls_total{");
        expect(got.text).toContain("mcp_server_operation_duration_seconds_bucket{");
        expect(got.text).toBe(want.text);
        expect(got.scopes).toStrictEqual(want.scopes);
      }
    });
  },
);

describe("native aggregation cardinality", () => {
  afterEach(() => vi.useRealTimers());

  it("puts series past the SDK's limit of 2000 into its otel.metric.overflow series, as the SDK does", async () => {
    vi.useFakeTimers({ toFake: ["Date", "performance"], now: Date.UTC(2026, 11, 2, 5) });
    const run = async (nativeMetrics: boolean) => {
      vi.setSystemTime(Date.UTC(2026, 11, 2, 5));
      const h = harness({}, { tracing: false, serviceInstanceId: "i-1", nativeMetrics });
      for (let i = 0; i < 2100; i++) {
        h.telemetry.clientOperation({ method: "tools/list", upstream: `u${i}`, transport: "pipe" }, i % 7);
      }
      const out = await outputs(h);
      await h.telemetry.shutdown();
      return out;
    };
    const got = await run(true);
    const want = await run(false);
    expect(got.text).toContain('otel_metric_overflow="true"');
    expect(got.text).toBe(want.text);
    expect(got.scopes).toStrictEqual(want.scopes);
  }, 60_000);
});

describe("native aggregation fallback", () => {
  it("is used only for readers that want cumulative temporality and the default aggregation", () => {
    expect(aggregatesNatively(new TestMetricReader())).toBe(true);
    const delta = new TestMetricReader({
      aggregationTemporalitySelector: () => AggregationTemporality.DELTA,
    });
    expect(aggregatesNatively(delta)).toBe(false);
    const h = harness({}, { tracing: false, metricReaders: [delta] });
    // The delta reader gets the OTel instruments: no wrapped producer.
    expect(Object.hasOwn(delta, "setMetricProducer")).toBe(false);
    return h.telemetry.shutdown();
  });
});
