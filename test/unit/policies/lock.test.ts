import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode } from "../../../src/errors.ts";
import { LockManager, lockIdFor, lockPolicy } from "../../../src/policies/lock.ts";
import { compose } from "../../../src/policies/pipeline.ts";
import { timeoutPolicy } from "../../../src/policies/timeout.ts";
import { context, deferred, recorder, settle } from "./helpers.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("lock policy", () => {
  it("never overlaps calls with the same key, while different keys run in parallel", async () => {
    const locks = new LockManager();
    const policy = lockPolicy(locks, { key: "path", group: undefined, timeoutMs: 0 });
    const active = new Map<string, number>();
    const peak = new Map<string, number>();
    let peakAll = 0;
    const write = (path: string) => async () => {
      const n = (active.get(path) ?? 0) + 1;
      active.set(path, n);
      peak.set(path, Math.max(peak.get(path) ?? 0, n));
      peakAll = Math.max(
        peakAll,
        [...active.values()].reduce((a, b) => a + b, 0),
      );
      await sleep(10);
      active.set(path, n - 1);
    };
    const calls = ["a", "b", "a", "b", "a", "c"].map((path) =>
      policy.execute(write(path), context({ args: { path } })),
    );
    await vi.runAllTimersAsync();
    await Promise.all(calls);
    expect(Object.fromEntries(peak)).toEqual({ a: 1, b: 1, c: 1 });
    expect(peakAll).toBe(3);
    expect(locks.size).toBe(0);
  });

  it("grants the lock in FIFO order", async () => {
    const locks = new LockManager();
    const policy = lockPolicy(locks, { key: undefined, group: undefined, timeoutMs: 0 });
    const order: number[] = [];
    const gate = deferred();
    const first = policy.execute(() => gate.promise, context());
    const rest = [1, 2, 3, 4].map((i) =>
      policy.execute(async () => void order.push(i), context({ priority: i })),
    );
    expect(locks.waiting("up__tool")).toBe(4);
    gate.resolve();
    await Promise.all([first, ...rest]);
    expect(order).toEqual([1, 2, 3, 4]);
  });

  it("releases the lock after a call that throws", async () => {
    const locks = new LockManager();
    const policy = lockPolicy(locks, { key: undefined, group: undefined, timeoutMs: 0 });
    await expect(
      policy.execute(async () => {
        throw new Error("crash");
      }, context()),
    ).rejects.toThrow("crash");
    expect(locks.size).toBe(0);
    await expect(policy.execute(async () => "next", context())).resolves.toBe("next");
  });

  it("releases the lock when the call times out, even if the upstream never answers", async () => {
    const locks = new LockManager();
    const policy = compose(
      lockPolicy(locks, { key: undefined, group: undefined, timeoutMs: 0 }),
      timeoutPolicy({ attemptMs: 50, callMs: 0, resetOnProgress: false }),
    );
    const hung = settle(policy.execute(() => new Promise<never>(() => {}), context()));
    const next = settle(policy.execute(async () => "next", context()));
    await vi.advanceTimersByTimeAsync(50);
    expect(hung.error).toMatchObject({ code: ErrorCode.UpstreamTimeout });
    expect(next.value).toBe("next");
    expect(locks.size).toBe(0);
  });

  it("fails with LockTimeout naming the lock when the wait runs out", async () => {
    const locks = new LockManager();
    const policy = lockPolicy(locks, { key: "/file/path", group: undefined, timeoutMs: 100 });
    const gate = deferred();
    const args = { file: { path: "/tmp/x" } };
    void policy.execute(() => gate.promise, context({ args }));
    const events = recorder();
    const waiting = settle(policy.execute(async () => "x", context({ args, events })));
    await vi.advanceTimersByTimeAsync(99);
    expect(waiting.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.error).toMatchObject({ code: ErrorCode.LockTimeout, policy: "lock" });
    expect((waiting.error as Error).message).toContain('lock up__tool["/tmp/x"]');
    expect(events.of("lockRejected")).toEqual([
      expect.objectContaining({ code: "LockTimeout", waitMs: 100 }),
    ]);
    expect(locks.waiting('up__tool["/tmp/x"]')).toBe(0);
    gate.resolve();
    await vi.runAllTimersAsync();
    expect(locks.size).toBe(0);
  });

  it("takes a cancelled waiter out of the queue and keeps the lock for the others", async () => {
    const locks = new LockManager();
    const policy = lockPolicy(locks, { key: undefined, group: undefined, timeoutMs: 0 });
    const gate = deferred();
    const order: string[] = [];
    const first = policy.execute(() => gate.promise, context());
    const controller = new AbortController();
    const cancelled = settle(
      policy.execute(async () => void order.push("cancelled"), context({ signal: controller.signal })),
    );
    const last = policy.execute(async () => void order.push("last"), context());
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(cancelled.error).toMatchObject({ code: ErrorCode.Cancelled });
    expect(locks.waiting("up__tool")).toBe(1);
    gate.resolve();
    await Promise.all([first, last]);
    expect(order).toEqual(["last"]);
    expect(locks.size).toBe(0);
  });

  it("shares locks across the tools of a group", async () => {
    const locks = new LockManager();
    const options = { key: "path", group: "fs-writes", timeoutMs: 0 };
    const write = lockPolicy(locks, options);
    const move = lockPolicy(locks, options);
    const gate = deferred();
    void write.execute(() => gate.promise, context({ tool: "fs__write_file", args: { path: "a" } }));
    const moved = settle(
      move.execute(async () => "moved", context({ tool: "fs__move_file", args: { path: "a" } })),
    );
    await vi.advanceTimersByTimeAsync(0);
    expect(moved.done).toBe(false);
    expect(locks.isHeld('fs-writes["a"]')).toBe(true);
    gate.resolve();
    await vi.advanceTimersByTimeAsync(0);
    expect(moved.value).toBe("moved");
  });

  it("emits acquire, wait and release events with wait and hold times", async () => {
    const locks = new LockManager();
    const policy = lockPolicy(locks, { key: undefined, group: undefined, timeoutMs: 0 });
    const events = recorder();
    const first = policy.execute(() => sleep(30), context({ events }));
    const second = policy.execute(async () => "done", context({ events }));
    await vi.runAllTimersAsync();
    await Promise.all([first, second]);
    expect(events.all.map((e) => e.type)).toEqual([
      "lockAcquired",
      "lockWait",
      "lockReleased",
      "lockAcquired",
      "lockReleased",
    ]);
    expect(events.of("lockAcquired").map((e) => e.waitMs)).toEqual([0, 30]);
    expect(events.of("lockReleased")[0]?.heldMs).toBe(30);
  });
});

describe("lockIdFor", () => {
  it("keys by argument value, keeping types apart and giving a missing value one lock", () => {
    const id = lockIdFor({ key: "a.b", group: undefined });
    const of = (args: Record<string, unknown>) => id(context({ args }));
    expect(of({ a: { b: "1" } })).toBe('up__tool["1"]');
    expect(of({ a: { b: 1 } })).toBe("up__tool[1]");
    expect(of({})).toBe("up__tool[undefined]");
    expect(of({ a: "scalar" })).toBe("up__tool[undefined]");
  });

  it("uses the group, or the tool, when there is no key", () => {
    expect(lockIdFor({ key: undefined, group: "g" })(context())).toBe("g");
    expect(lockIdFor({ key: undefined, group: undefined })(context({ tool: "t" }))).toBe("t");
  });

  it("reads JSON pointers with escapes", () => {
    const id = lockIdFor({ key: "/a~1b/c~0d", group: "g" });
    expect(id(context({ args: { "a/b": { "c~d": "v" } } }))).toBe('g["v"]');
  });
});
