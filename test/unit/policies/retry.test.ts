import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, GatewayError, RpcCode } from "../../../src/errors.ts";
import { type RetryOptions, retryPolicy } from "../../../src/policies/retry.ts";
import type { CallContext } from "../../../src/policies/types.ts";
import { context, recorder, settle } from "./helpers.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const options = (o: Partial<RetryOptions> = {}): RetryOptions => ({
  maxAttempts: 3,
  baseDelayMs: 100,
  maxDelayMs: 2_000,
  retryToolErrors: false,
  ...o,
});

const upstreamFailure = () =>
  new GatewayError(ErrorCode.UpstreamError, "internal error", {
    rpcCode: RpcCode.InternalError,
    reachedUpstream: true,
  });
const refused = () => new GatewayError(ErrorCode.UpstreamUnavailable, "connect ECONNREFUSED 127.0.0.1:9");

/** A call that fails with the given errors in turn, then answers. */
function failing(errors: Error[], answer: unknown = { content: [] }) {
  return vi.fn(async (_ctx: CallContext) => {
    const error = errors.shift();
    if (error) throw error;
    return answer;
  });
}

describe("retryPolicy", () => {
  it("succeeds after transient failures of an idempotent call", async () => {
    const events = recorder();
    const fn = failing([upstreamFailure(), upstreamFailure()], "third time lucky");
    const result = settle(retryPolicy(options()).execute(fn, context({ idempotent: true, events })));
    await vi.runAllTimersAsync();
    expect(result.value).toBe("third time lucky");
    expect(fn).toHaveBeenCalledTimes(3);
    expect(fn.mock.calls.map(([ctx]) => ctx.attempt)).toEqual([1, 2, 3]);
    expect(events.of("attemptEnd").map((e) => [e.attempt, e.outcome, e.errorClass])).toEqual([
      [1, "error", "transient"],
      [2, "error", "transient"],
      [3, "success", undefined],
    ]);
  });

  it("does not retry a non-idempotent call whose request reached the upstream", async () => {
    const error = upstreamFailure();
    const fn = failing([error]);
    await expect(retryPolicy(options()).execute(fn, context({ idempotent: false }))).rejects.toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("retries a non-idempotent call whose request never left (connection refused)", async () => {
    const fn = failing([refused()], "connected");
    const result = settle(retryPolicy(options()).execute(fn, context({ idempotent: false })));
    await vi.runAllTimersAsync();
    expect(result.value).toBe("connected");
    expect(fn).toHaveBeenCalledTimes(2);
  });

  it("never retries client errors, even for an idempotent call", async () => {
    const invalid = new GatewayError(ErrorCode.UpstreamError, "bad params", {
      rpcCode: RpcCode.InvalidParams,
      reachedUpstream: true,
    });
    const fn = failing([invalid]);
    await expect(retryPolicy(options()).execute(fn, context({ idempotent: true }))).rejects.toBe(invalid);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("passes an isError result through without retrying by default", async () => {
    const toolError = { isError: true, content: [{ type: "text", text: "no such city" }] };
    const fn = vi.fn(async () => toolError);
    await expect(retryPolicy(options()).execute(fn, context({ idempotent: true }))).resolves.toBe(toolError);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("retries isError results with retryToolErrors and returns the last one when attempts run out", async () => {
    const fn = vi.fn(async () => ({ isError: true, content: [] }));
    const result = settle(
      retryPolicy(options({ retryToolErrors: true })).execute(fn, context({ idempotent: true })),
    );
    await vi.runAllTimersAsync();
    expect(result.value).toEqual({ isError: true, content: [] });
    expect(fn).toHaveBeenCalledTimes(3);
  });

  it("waits exponentially growing, jittered delays, capped by maxDelayMs", async () => {
    const randoms = [0.5, 0.25, 0.9, 0.5];
    const random = () => randoms.shift() ?? 0;
    const events = recorder();
    const policy = retryPolicy(options({ maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 300 }), random);
    const t0 = performance.now();
    const starts: number[] = [];
    const fn = vi.fn(async () => {
      starts.push(performance.now() - t0);
      if (starts.length < 5) throw refused();
      return "ok";
    });
    const result = settle(policy.execute(fn, context({ events })));
    await vi.runAllTimersAsync();
    expect(result.value).toBe("ok");
    // Caps 100, 200, 300 (400 capped), 300 (800 capped); each delay = random * cap.
    expect(events.of("retryScheduled").map((e) => e.delayMs)).toEqual([50, 50, 270, 150]);
    expect(starts).toEqual([0, 50, 100, 370, 520]);
  });

  it("fails with RetriesExhausted keeping the last error and listing every attempt", async () => {
    const fn = failing([refused(), refused(), upstreamFailure()]);
    const result = settle(retryPolicy(options()).execute(fn, context({ idempotent: true })));
    await vi.runAllTimersAsync();
    const error = result.error as GatewayError;
    expect(error.code).toBe(ErrorCode.RetriesExhausted);
    expect(error.message).toContain("3 attempts failed");
    expect(error.message).toContain("internal error");
    expect(error.cause).toBeInstanceOf(GatewayError);
    expect(error.data?.attempts).toEqual([
      expect.objectContaining({ attempt: 1, code: ErrorCode.UpstreamUnavailable }),
      expect.objectContaining({ attempt: 2, code: ErrorCode.UpstreamUnavailable }),
      expect.objectContaining({ attempt: 3, code: ErrorCode.UpstreamError }),
    ]);
  });

  it("surfaces the error of a single attempt itself, not RetriesExhausted", async () => {
    const error = refused();
    await expect(retryPolicy(options({ maxAttempts: 1 })).execute(failing([error]), context())).rejects.toBe(
      error,
    );
  });

  it("does not sleep past the call deadline", async () => {
    const fn = failing([refused(), refused(), refused()]);
    const events = recorder();
    const ctx = context({ deadline: performance.now() + 150, events });
    const result = settle(retryPolicy(options(), () => 0.999).execute(fn, ctx));
    await vi.runAllTimersAsync();
    // 99.9 ms fits before the deadline; the next 199.8 ms would not.
    expect(fn).toHaveBeenCalledTimes(2);
    expect(events.of("retryScheduled")).toHaveLength(1);
    expect(result.error).toMatchObject({ code: ErrorCode.RetriesExhausted });
  });

  it("stops the backoff sleep at once when the call is cancelled", async () => {
    const controller = new AbortController();
    const fn = failing([refused(), refused()]);
    const result = settle(
      retryPolicy(options(), () => 1).execute(fn, context({ signal: controller.signal })),
    );
    await vi.advanceTimersByTimeAsync(10);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(result.error).toMatchObject({ code: ErrorCode.Cancelled });
    await vi.runAllTimersAsync();
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it("waits at least an upstream's Retry-After before the next attempt", async () => {
    const events = recorder();
    const throttled = new GatewayError(ErrorCode.UpstreamError, "HTTP 429", {
      reachedUpstream: false,
      data: { httpStatus: 429, retryAfterMs: 1_500 },
    });
    const fn = failing([throttled], "served");
    const result = settle(
      retryPolicy(options(), () => 0).execute(fn, context({ idempotent: false, events })),
    );
    await vi.advanceTimersByTimeAsync(1_499);
    expect(fn).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(result.value).toBe("served");
    expect(events.of("retryScheduled").map((e) => e.delayMs)).toEqual([1_500]);
  });

  it("gives up at once when Retry-After is longer than maxDelayMs", async () => {
    const throttled = new GatewayError(ErrorCode.UpstreamError, "HTTP 503", {
      reachedUpstream: true,
      data: { httpStatus: 503, retryAfterMs: 60_000 },
    });
    const fn = failing([throttled]);
    await expect(retryPolicy(options()).execute(fn, context({ idempotent: true }))).rejects.toBe(throttled);
    expect(fn).toHaveBeenCalledTimes(1);
  });
});
