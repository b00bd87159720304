import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { deadlinePolicy, timeoutPolicy } from "../../../src/policies/timeout.ts";
import type { CallContext } from "../../../src/policies/types.ts";
import { context, recorder, settle } from "./helpers.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

/** A terminal call that never answers, keeping the signal it was given. */
function hang(seen: { signal?: AbortSignal }) {
  return (ctx: CallContext) => {
    seen.signal = ctx.signal;
    return new Promise<never>(() => {});
  };
}

describe("timeoutPolicy", () => {
  it("aborts the signal passed to the call and names the attempt limit", async () => {
    const policy = timeoutPolicy({ attemptMs: 50, callMs: 0, resetOnProgress: false });
    const seen: { signal?: AbortSignal } = {};
    const events = recorder();
    const result = settle(policy.execute(hang(seen), context({ events })));
    await vi.advanceTimersByTimeAsync(49);
    expect(result.done).toBe(false);
    expect(seen.signal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(seen.signal?.aborted).toBe(true);
    const error = result.error as GatewayError;
    expect(error).toBeInstanceOf(GatewayError);
    expect(error.code).toBe(ErrorCode.UpstreamTimeout);
    expect(error.reachedUpstream).toBe(true);
    expect(error.message).toContain("attempt timeout 50 ms");
    expect(seen.signal?.reason).toBe(error);
    expect(events.of("timeout")).toEqual([expect.objectContaining({ limit: "attempt", ms: 50 })]);
  });

  it("restarts the attempt timer on each progress notification when resetOnProgress", async () => {
    const policy = timeoutPolicy({ attemptMs: 50, callMs: 0, resetOnProgress: true });
    const result = settle(
      policy.execute(async (ctx) => {
        for (let i = 0; i < 4; i++) {
          await new Promise((r) => setTimeout(r, 40));
          ctx.onActivity?.();
        }
        return "done after 160 ms";
      }, context()),
    );
    await vi.advanceTimersByTimeAsync(160);
    expect(result.value).toBe("done after 160 ms");
  });

  it("does not reset on progress when resetOnProgress is off", async () => {
    const policy = timeoutPolicy({ attemptMs: 50, callMs: 0, resetOnProgress: false });
    const result = settle(
      policy.execute(async (ctx) => {
        await new Promise((r) => setTimeout(r, 40));
        ctx.onActivity?.();
        await new Promise((r) => setTimeout(r, 40));
        return "too late";
      }, context()),
    );
    await vi.advanceTimersByTimeAsync(50);
    expect(result.error).toMatchObject({ code: ErrorCode.UpstreamTimeout });
  });

  it("rejects at once with Cancelled when the client cancels, even if the call ignores its signal", async () => {
    const policy = timeoutPolicy({ attemptMs: 0, callMs: 0, resetOnProgress: false });
    const controller = new AbortController();
    const seen: { signal?: AbortSignal } = {};
    const result = settle(policy.execute(hang(seen), context({ signal: controller.signal })));
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(result.error).toMatchObject({ code: ErrorCode.Cancelled });
    expect(seen.signal?.aborted).toBe(true);
  });

  it("passes results and errors of the call through; a finished call's limit never fires", async () => {
    const policy = timeoutPolicy({ attemptMs: 50, callMs: 0, resetOnProgress: true });
    const events = recorder();
    await expect(policy.execute(async () => "ok", context({ events }))).resolves.toBe("ok");
    await expect(
      policy.execute(async () => {
        throw new Error("upstream said no");
      }, context({ events })),
    ).rejects.toThrow("upstream said no");
    await vi.advanceTimersByTimeAsync(100);
    expect(events.of("timeout")).toEqual([]);
    // The policy's one timer rang, found nothing due and was not armed again.
    expect(vi.getTimerCount()).toBe(0);
  });
});

describe("deadlinePolicy", () => {
  it("aborts the call at ctx.deadline and names the call deadline", async () => {
    const policy = deadlinePolicy({ callMs: 100 });
    const seen: { signal?: AbortSignal } = {};
    const result = settle(policy.execute(hang(seen), context({ deadline: performance.now() + 100 })));
    await vi.advanceTimersByTimeAsync(100);
    expect(seen.signal?.aborted).toBe(true);
    expect(result.error).toMatchObject({ code: ErrorCode.UpstreamTimeout, reachedUpstream: true });
    expect((result.error as Error).message).toContain("call deadline 100 ms");
  });

  it("fails without calling when the deadline has passed", async () => {
    const policy = deadlinePolicy({ callMs: 100 });
    const fn = vi.fn(async () => "never");
    await expect(policy.execute(fn, context({ deadline: performance.now() - 1 }))).rejects.toMatchObject({
      code: ErrorCode.UpstreamTimeout,
    });
    expect(fn).not.toHaveBeenCalled();
  });

  it("adds nothing when there is no deadline", async () => {
    const policy = deadlinePolicy({ callMs: 0 });
    const ctx = context();
    await expect(policy.execute(async (c) => c === ctx, ctx)).resolves.toBe(true);
  });
});
