import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { POLICY_DEFAULTS } from "../../../src/config/policy.ts";
import { ErrorCode, GatewayError, RpcCode } from "../../../src/errors.ts";
import { type Breaker, type BreakerOptions, BreakerRegistry } from "../../../src/policies/breaker.ts";
import { context, deferred, recorder, settle } from "./helpers.ts";

const options: BreakerOptions = {
  failureRatePercent: 50,
  volumeThreshold: 4,
  windowMs: 10_000,
  resetTimeoutMs: 5_000,
};

const down = async (): Promise<never> => {
  throw new GatewayError(ErrorCode.ConnectionLost, "connection reset mid-call", { reachedUpstream: true });
};
const ok = async () => ({ content: [] });

let registry: BreakerRegistry;
beforeEach(() => {
  vi.useFakeTimers({ now: new Date("2026-11-01T12:00:00Z") });
  registry = new BreakerRegistry();
});
afterEach(() => {
  registry.shutdown();
  vi.useRealTimers();
});

async function failTimes(breaker: Breaker, n: number) {
  for (let i = 0; i < n; i++) await breaker.execute(down, context()).catch(() => {});
}

it("does not count calls refused because the upstream is not connected", async () => {
  const breaker = registry.get("upstream:x", options);
  const notConnected = async (): Promise<never> => {
    throw new GatewayError(ErrorCode.UpstreamUnavailable, "upstream is connecting", {
      reachedUpstream: false,
    });
  };
  for (let i = 0; i < 20; i++) await breaker.execute(notConnected, context()).catch(() => {});
  expect(breaker.state).toBe("closed");
});

describe("Breaker", () => {
  it("stays closed below the volume threshold, then opens at the failure rate", async () => {
    const breaker = registry.get("upstream:up", options);
    await failTimes(breaker, 3);
    expect(breaker.state).toBe("closed");
    await failTimes(breaker, 1);
    expect(breaker.state).toBe("open");
  });

  it("fails fast with CircuitOpen without calling, saying when it will try again", async () => {
    const breaker = registry.get("upstream:up", options);
    await failTimes(breaker, 4);
    const fn = vi.fn(ok);
    const events = recorder();
    const error = await breaker.execute(fn, context({ events })).catch((e: unknown) => e);
    expect(fn).not.toHaveBeenCalled();
    expect(error).toMatchObject({ code: ErrorCode.CircuitOpen, reachedUpstream: false });
    expect((error as Error).message).toContain("2026-11-01T12:00:05.000Z");
    expect((error as Error).message).toContain("in 5 s");
    expect((error as Error).message).toContain("4 failures in 4 calls");
    expect(events.of("breakerRejected")).toEqual([
      expect.objectContaining({ breaker: "upstream:up", state: "open" }),
    ]);
  });

  it("lets one trial call through after resetTimeoutMs and closes when it succeeds", async () => {
    const events = recorder();
    const own = new BreakerRegistry({ events });
    try {
      const b = own.get("upstream:up", options);
      await failTimes(b, 4);
      await vi.advanceTimersByTimeAsync(4_999);
      expect(b.state).toBe("open");
      await vi.advanceTimersByTimeAsync(1);
      expect(b.state).toBe("halfOpen");
      const trial = deferred<{ content: [] }>();
      const first = b.execute(() => trial.promise, context());
      // While the trial runs, other calls still fail fast.
      await expect(b.execute(ok, context())).rejects.toMatchObject({ code: ErrorCode.CircuitOpen });
      trial.resolve({ content: [] });
      await first;
      expect(b.state).toBe("closed");
      await expect(b.execute(ok, context())).resolves.toEqual({ content: [] });
      expect(events.of("breakerStateChange").map((e) => `${e.from}>${e.to}`)).toEqual([
        "closed>open",
        "open>halfOpen",
        "halfOpen>closed",
      ]);
      expect(events.of("breakerStateChange")[0]?.nextAttemptAt).toBe(Date.parse("2026-11-01T12:00:05Z"));
    } finally {
      own.shutdown();
    }
  });

  it("reopens when the half-open trial fails", async () => {
    const breaker = registry.get("upstream:up", options);
    await failTimes(breaker, 4);
    await vi.advanceTimersByTimeAsync(5_000);
    await failTimes(breaker, 1);
    expect(breaker.state).toBe("open");
  });

  it("never counts client errors, overload or isError results", async () => {
    const breaker = registry.get("upstream:up", options);
    const invalid = new GatewayError(ErrorCode.UpstreamError, "bad params", {
      rpcCode: RpcCode.InvalidParams,
    });
    const full = new GatewayError(ErrorCode.QueueFull, "queue full");
    for (let i = 0; i < 10; i++) {
      await breaker.execute(() => Promise.reject(invalid), context()).catch(() => {});
      await breaker.execute(() => Promise.reject(full), context()).catch(() => {});
      await breaker.execute(async () => ({ isError: true, content: [] }), context());
    }
    expect(breaker.state).toBe("closed");
    expect(breaker.stats.failures).toBe(0);
  });

  it("passes the call's own error through", async () => {
    const breaker = registry.get("upstream:up", options);
    const error = new GatewayError(ErrorCode.UpstreamTimeout, "slow");
    await expect(breaker.execute(() => Promise.reject(error), context())).rejects.toBe(error);
  });
});

describe("BreakerRegistry", () => {
  it("shares one breaker per upstream, or one per tool, and none when disabled", () => {
    const upstreamScope = { ...POLICY_DEFAULTS.breaker, scope: "upstream" as const };
    const toolScope = { ...POLICY_DEFAULTS.breaker, scope: "tool" as const };
    const a = registry.breakerFor(upstreamScope, "up", "up__a");
    expect(registry.breakerFor(upstreamScope, "up", "up__b")).toBe(a);
    expect(registry.breakerFor(toolScope, "up", "up__a")).not.toBe(a);
    expect(registry.breakerFor({ ...upstreamScope, enabled: false }, "up", "up__a")).toBeUndefined();
    expect(registry.states().map((s) => s.id)).toEqual(["upstream:up", "tool:up__a"]);
  });

  it("reports each breaker's state, next attempt and window stats", async () => {
    const breaker = registry.get("upstream:up", options);
    await breaker.execute(ok, context());
    await failTimes(breaker, 3);
    expect(registry.states()).toEqual([
      {
        id: "upstream:up",
        state: "open",
        nextAttemptAt: "2026-11-01T12:00:05.000Z",
        stats: { calls: 4, successes: 1, failures: 3, rejected: 0 },
      },
    ]);
  });

  it("forgets failures older than the window", async () => {
    const breaker = registry.get("upstream:up", options);
    await failTimes(breaker, 3);
    await vi.advanceTimersByTimeAsync(options.windowMs + 1_000);
    expect(breaker.stats.calls).toBe(0);
    await failTimes(breaker, 1);
    expect(breaker.state).toBe("closed");
  });

  it("stops every timer on shutdown, and later calls fail with ShuttingDown", async () => {
    const breaker = registry.get("upstream:up", options);
    await failTimes(breaker, 4);
    expect(vi.getTimerCount()).toBeGreaterThan(0);
    registry.shutdown();
    expect(vi.getTimerCount()).toBe(0);
    const result = settle(breaker.execute(ok, context()));
    await vi.advanceTimersByTimeAsync(0);
    expect(result.error).toMatchObject({ code: ErrorCode.ShuttingDown });
  });
});
