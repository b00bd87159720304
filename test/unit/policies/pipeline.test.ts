import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { POLICY_DEFAULTS, type ResolvedPolicy } from "../../../src/config/policy.ts";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { BreakerRegistry } from "../../../src/policies/breaker.ts";
import { Bulkhead } from "../../../src/policies/bulkhead.ts";
import { PolicyEventHub } from "../../../src/policies/events.ts";
import { LockManager } from "../../../src/policies/lock.ts";
import { buildPipeline, compose, type PipelineShared } from "../../../src/policies/pipeline.ts";
import type { CallContext, Policy } from "../../../src/policies/types.ts";
import { context, deferred, recorder, settle } from "./helpers.ts";

function policyWith(overrides: Partial<ResolvedPolicy>): ResolvedPolicy {
  return { ...structuredClone(POLICY_DEFAULTS), ...overrides };
}

let shared: PipelineShared & { toolBulkhead: Bulkhead; upstreamBulkhead: Bulkhead; locks: LockManager };
let breakers: BreakerRegistry;

beforeEach(() => {
  vi.useFakeTimers();
  const toolBulkhead = new Bulkhead({
    name: 'tool "up__tool"',
    maxInFlight: 1,
    queueSize: 10,
    queueTimeoutMs: 0,
  });
  const upstreamBulkhead = new Bulkhead({
    name: 'upstream "up"',
    maxInFlight: 10,
    queueSize: 10,
    queueTimeoutMs: 0,
  });
  breakers = new BreakerRegistry();
  shared = {
    toolBulkhead,
    upstreamBulkhead,
    bulkheads: [toolBulkhead, upstreamBulkhead],
    locks: new LockManager(),
    random: () => 1,
  };
});
afterEach(() => {
  breakers.shutdown();
  vi.useRealTimers();
});

const refused = () => new GatewayError(ErrorCode.UpstreamUnavailable, "connect ECONNREFUSED");
/** A failure after the request left: the kind a breaker counts. */
const lost = () => new GatewayError(ErrorCode.ConnectionLost, "connection reset", { reachedUpstream: true });
const hang = () => new Promise<never>(() => {});

describe("compose", () => {
  it("nests policies with the first one outermost", async () => {
    const trace: string[] = [];
    const layer = (name: string): Policy => ({
      name,
      async execute(fn, ctx) {
        trace.push(`>${name}`);
        const result = await fn(ctx);
        trace.push(`<${name}`);
        return result;
      },
    });
    const policy = compose(layer("a"), layer("b"), layer("c"));
    const fn = async () => void trace.push("call");
    await policy.execute(fn, context());
    await policy.execute(fn, context());
    expect(policy.name).toBe("a > b > c");
    expect(trace.slice(0, 7)).toEqual([">a", ">b", ">c", "call", "<c", "<b", "<a"]);
    expect(trace).toHaveLength(14);
  });
});

describe("buildPipeline", () => {
  it("puts the policies in the documented order", () => {
    const policy = policyWith({
      lock: { key: undefined, group: undefined, timeoutMs: 0 },
      fallback: { routes: [{ tool: "alt" }], on: ["unavailable"] },
    });
    const pipeline = buildPipeline(policy, {
      ...shared,
      breaker: breakers.breakerFor(policy.breaker, "up", "up__tool"),
      callRoute: async () => ({}),
    });
    expect(pipeline.name).toBe("deadline > fallback > retry > breaker > bulkhead > lock > timeout");
    expect(buildPipeline(POLICY_DEFAULTS, { ...shared, bulkheads: [] }).name).toBe(
      "deadline > retry > timeout",
    );
  });

  it("releases the queue place of a call cancelled while queued", async () => {
    const pipeline = buildPipeline(POLICY_DEFAULTS, shared);
    const gate = deferred();
    const first = pipeline.execute(() => gate.promise, context());
    const controller = new AbortController();
    const queued = settle(pipeline.execute(async () => "x", context({ signal: controller.signal })));
    await vi.advanceTimersByTimeAsync(0);
    expect(shared.toolBulkhead.queued).toBe(1);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(queued.error).toMatchObject({ code: ErrorCode.Cancelled });
    expect(shared.toolBulkhead.queued).toBe(0);
    gate.resolve();
    await first;
    expect([shared.toolBulkhead.inFlight, shared.upstreamBulkhead.inFlight]).toEqual([0, 0]);
  });

  it("releases its slots when cancelled while waiting for a lock", async () => {
    shared.toolBulkhead = new Bulkhead({ name: "tool", maxInFlight: 5, queueSize: 0, queueTimeoutMs: 0 });
    shared.bulkheads = [shared.toolBulkhead, shared.upstreamBulkhead];
    const pipeline = buildPipeline(
      policyWith({ lock: { key: "path", group: undefined, timeoutMs: 0 } }),
      shared,
    );
    const gate = deferred();
    const args = { path: "/a" };
    const first = pipeline.execute(() => gate.promise, context({ args }));
    const controller = new AbortController();
    const waiting = settle(pipeline.execute(async () => "x", context({ args, signal: controller.signal })));
    await vi.advanceTimersByTimeAsync(0);
    expect(shared.locks.waiting('up__tool["/a"]')).toBe(1);
    expect(shared.toolBulkhead.inFlight).toBe(2);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.error).toMatchObject({ code: ErrorCode.Cancelled });
    expect(shared.locks.waiting('up__tool["/a"]')).toBe(0);
    expect(shared.toolBulkhead.inFlight).toBe(1);
    gate.resolve();
    await first;
    expect(shared.locks.size).toBe(0);
    expect(shared.toolBulkhead.inFlight).toBe(0);
  });

  it("releases the lock and slots at once when cancelled while running, and aborts the upstream call", async () => {
    const pipeline = buildPipeline(
      policyWith({ lock: { key: undefined, group: undefined, timeoutMs: 0 } }),
      shared,
    );
    const controller = new AbortController();
    let upstreamSignal: AbortSignal | undefined;
    const running = settle(
      pipeline.execute(
        (ctx: CallContext) => {
          upstreamSignal = ctx.signal;
          return hang();
        },
        context({ signal: controller.signal }),
      ),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(shared.locks.size).toBe(1);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(running.error).toMatchObject({ code: ErrorCode.Cancelled });
    expect(upstreamSignal?.aborted).toBe(true);
    expect(shared.locks.size).toBe(0);
    expect([shared.toolBulkhead.inFlight, shared.upstreamBulkhead.inFlight]).toEqual([0, 0]);
  });

  it("ends a call queued past its deadline with UpstreamTimeout naming the call deadline", async () => {
    const pipeline = buildPipeline(
      policyWith({ timeout: { attemptMs: 0, callMs: 500, resetOnProgress: true } }),
      shared,
    );
    const gate = deferred();
    void pipeline.execute(() => gate.promise, context());
    const late = settle(pipeline.execute(async () => "x", context({ deadline: performance.now() + 500 })));
    await vi.advanceTimersByTimeAsync(500);
    expect(late.error).toMatchObject({ code: ErrorCode.UpstreamTimeout });
    expect((late.error as Error).message).toContain("call deadline 500 ms");
    expect(shared.toolBulkhead.queued).toBe(0);
    gate.resolve();
  });

  it("does not hold a slot during a retry backoff", async () => {
    const pipeline = buildPipeline(POLICY_DEFAULTS, shared);
    const failOnce = vi
      .fn<() => Promise<string>>()
      .mockRejectedValueOnce(refused())
      .mockResolvedValue("retried");
    const retrying = settle(pipeline.execute(failOnce, context({ idempotent: true })));
    await vi.advanceTimersByTimeAsync(0);
    // The first attempt failed; its backoff (100 ms) is running.
    expect(shared.toolBulkhead.inFlight).toBe(0);
    const other = settle(pipeline.execute(async () => "meanwhile", context()));
    await vi.advanceTimersByTimeAsync(0);
    expect(other.value).toBe("meanwhile");
    await vi.advanceTimersByTimeAsync(100);
    expect(retrying.value).toBe("retried");
  });

  it("retries an idempotent call whose attempt timed out, cancelling the first attempt", async () => {
    const pipeline = buildPipeline(
      policyWith({ timeout: { attemptMs: 50, callMs: 0, resetOnProgress: true } }),
      shared,
    );
    const signals: AbortSignal[] = [];
    const fn = vi.fn(async (ctx: CallContext) => {
      signals.push(ctx.signal);
      return signals.length === 1 ? hang() : "second attempt";
    });
    const result = settle(pipeline.execute(fn, context({ idempotent: true })));
    await vi.advanceTimersByTimeAsync(150);
    expect(result.value).toBe("second attempt");
    expect(signals.map((s) => s.aborted)).toEqual([true, false]);
  });

  it("fails fast when the breaker is open instead of queueing", async () => {
    const policy = policyWith({
      breaker: { ...POLICY_DEFAULTS.breaker, volumeThreshold: 1 },
      retry: { ...POLICY_DEFAULTS.retry, maxAttempts: 1 },
    });
    const pipeline = buildPipeline(policy, {
      ...shared,
      breaker: breakers.breakerFor(policy.breaker, "up", "up__tool"),
    });
    await pipeline.execute(() => Promise.reject(lost()), context()).catch(() => {});
    // Holds the tool slot outside the pipeline, so a call that got past the breaker would queue.
    shared.toolBulkhead.tryAcquire();
    const events = recorder();
    const result = settle(pipeline.execute(async () => "x", context({ events })));
    await vi.advanceTimersByTimeAsync(0);
    expect(result.error).toMatchObject({ code: ErrorCode.CircuitOpen });
    expect(events.of("queued")).toEqual([]);
    shared.toolBulkhead.release();
  });

  it("falls back to the next route when retries run out", async () => {
    const policy = policyWith({ fallback: { routes: [{ tool: "alt__tool" }], on: ["retriesExhausted"] } });
    const pipeline = buildPipeline(policy, {
      ...shared,
      callRoute: async () => ({ content: [], served: "alt" }),
    });
    const primary = vi.fn(() => Promise.reject(refused()));
    const result = settle(pipeline.execute(primary, context({ idempotent: true })));
    await vi.runAllTimersAsync();
    expect(primary).toHaveBeenCalledTimes(3);
    expect(result.value).toMatchObject({ served: "alt", _meta: { "toolgate/route": "alt__tool" } });
  });

  it("emits one attemptStart/attemptEnd pair per attempt around the queue and lock events", async () => {
    const pipeline = buildPipeline(
      policyWith({ lock: { key: undefined, group: undefined, timeoutMs: 0 } }),
      shared,
    );
    const events = recorder();
    const fn = vi.fn<() => Promise<string>>().mockRejectedValueOnce(refused()).mockResolvedValue("ok");
    const result = settle(pipeline.execute(fn, context({ events })));
    await vi.runAllTimersAsync();
    expect(result.value).toBe("ok");
    expect(events.all.map((e) => `${e.type}${"attempt" in e ? e.attempt : ""}`)).toEqual([
      "attemptStart1",
      "lockAcquired1",
      "lockReleased1",
      "attemptEnd1",
      "retryScheduled1",
      "attemptStart2",
      "lockAcquired2",
      "lockReleased2",
      "attemptEnd2",
    ]);
  });
});

describe("PolicyEventHub", () => {
  it("fans events out to every listener, survives a throwing one, and unsubscribes", () => {
    const hub = new PolicyEventHub();
    const seen: string[] = [];
    hub.on(() => {
      throw new Error("broken telemetry");
    });
    const off = hub.on((e) => void seen.push(e.type));
    hub.emit({ type: "attemptStart", upstream: "u", tool: "t", attempt: 1 });
    off();
    hub.emit({ type: "attemptStart", upstream: "u", tool: "t", attempt: 2 });
    expect(seen).toEqual(["attemptStart"]);
  });
});
