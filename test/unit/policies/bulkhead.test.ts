import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { Bulkhead, bulkheadPolicy } from "../../../src/policies/bulkhead.ts";
import { context, deferred, recorder, settle } from "./helpers.ts";

const bulkhead = (maxInFlight: number, queueSize: number, queueTimeoutMs = 0, name = "tool") =>
  new Bulkhead({ name, maxInFlight, queueSize, queueTimeoutMs });

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("Bulkhead", () => {
  it("never runs more than maxInFlight calls at once and runs them all", async () => {
    const policy = bulkheadPolicy([bulkhead(3, 100)], 0);
    let active = 0;
    let peak = 0;
    const work = (ms: number) => async () => {
      active++;
      peak = Math.max(peak, active);
      await new Promise((r) => setTimeout(r, ms));
      active--;
      return ms;
    };
    const calls = Array.from({ length: 20 }, (_, i) => policy.execute(work(10 + ((i * 7) % 13)), context()));
    await vi.runAllTimersAsync();
    const results = await Promise.all(calls);
    expect(results).toHaveLength(20);
    expect(peak).toBe(3);
    expect(active).toBe(0);
  });

  it("fails with QueueFull at once when the queue is full, and never queues more than queueSize", async () => {
    const b = bulkhead(1, 2);
    const policy = bulkheadPolicy([b], 0);
    const gate = deferred();
    const running = Array.from({ length: 3 }, () => settle(policy.execute(() => gate.promise, context())));
    expect(b.inFlight).toBe(1);
    expect(b.queued).toBe(2);
    const events = recorder();
    await expect(policy.execute(async () => "never", context({ events }))).rejects.toMatchObject({
      code: ErrorCode.QueueFull,
    });
    expect(events.of("rejected")).toEqual([expect.objectContaining({ code: "QueueFull", bulkhead: "tool" })]);
    expect(b.queued).toBe(2);
    gate.resolve();
    await vi.runAllTimersAsync();
    expect(running.every((r) => r.done && r.error === undefined)).toBe(true);
    expect(b.inFlight).toBe(0);
  });

  it("rejects with QueueTimeout when the wait runs out, and not a moment before", async () => {
    const b = bulkhead(1, 10, 100);
    const policy = bulkheadPolicy([b], 0);
    const gate = deferred();
    void policy.execute(() => gate.promise, context());
    const waiting = settle(policy.execute(async () => "late", context()));
    await vi.advanceTimersByTimeAsync(99);
    expect(waiting.done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.error).toBeInstanceOf(GatewayError);
    expect((waiting.error as GatewayError).code).toBe(ErrorCode.QueueTimeout);
    expect((waiting.error as GatewayError).message).toContain("queue of tool");
    expect(b.queued).toBe(0);
    gate.resolve();
  });

  it("serves higher priority first and FIFO within a priority", async () => {
    const policy = bulkheadPolicy([bulkhead(1, 10)], 0);
    const gate = deferred();
    const order: string[] = [];
    const first = policy.execute(() => gate.promise, context());
    const calls = [
      ["a", 0],
      ["b", 5],
      ["c", 0],
      ["d", 5],
      ["e", -1],
      ["f", 9],
    ].map(([name, priority]) =>
      policy.execute(async () => void order.push(name as string), context({ priority: priority as number })),
    );
    gate.resolve();
    await Promise.all([first, ...calls]);
    expect(order).toEqual(["f", "b", "d", "a", "c", "e"]);
  });

  it("removes a cancelled waiter at once and frees its place in the queue", async () => {
    const b = bulkhead(1, 1);
    const policy = bulkheadPolicy([b], 0);
    const gate = deferred();
    void policy.execute(() => gate.promise, context());
    const controller = new AbortController();
    const events = recorder();
    const cancelled = settle(policy.execute(async () => "x", context({ signal: controller.signal, events })));
    expect(b.queued).toBe(1);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(cancelled.error).toMatchObject({ code: ErrorCode.Cancelled });
    expect(b.queued).toBe(0);
    expect(events.of("rejected")).toEqual([expect.objectContaining({ code: "Cancelled" })]);
    const next = policy.execute(async () => "served", context());
    expect(b.queued).toBe(1);
    gate.resolve();
    await expect(next).resolves.toBe("served");
    expect(b.inFlight).toBe(0);
  });

  it("reports the wait of a queued call in queued/dequeued events", async () => {
    const policy = bulkheadPolicy([bulkhead(1, 10)], 0);
    const gate = deferred();
    void policy.execute(() => gate.promise, context());
    const events = recorder();
    const waiting = policy.execute(async () => "ok", context({ events, priority: 3 }));
    await vi.advanceTimersByTimeAsync(250);
    gate.resolve();
    await waiting;
    expect(events.of("queued")).toEqual([
      expect.objectContaining({ bulkhead: "tool", priority: 3, queued: 1 }),
    ]);
    expect(events.of("dequeued")).toEqual([expect.objectContaining({ bulkhead: "tool", waitMs: 250 })]);
  });
});

describe("bulkheadPolicy over tool, upstream and global bulkheads", () => {
  it("releases the slots it holds when a later bulkhead is full", async () => {
    const tool = bulkhead(5, 5, 0, "tool");
    const upstream = bulkhead(1, 0, 0, "upstream");
    const policy = bulkheadPolicy([tool, upstream], 0);
    const gate = deferred();
    void policy.execute(() => gate.promise, context());
    await expect(policy.execute(async () => "x", context())).rejects.toMatchObject({
      code: ErrorCode.QueueFull,
    });
    expect(tool.inFlight).toBe(1);
    gate.resolve();
    await vi.runAllTimersAsync();
    expect(tool.inFlight).toBe(0);
    expect(upstream.inFlight).toBe(0);
  });

  it("shares one queue-timeout budget across all the waits", async () => {
    const tool = bulkhead(1, 5, 0, "tool");
    const global = bulkhead(1, 5, 0, "global");
    const policy = bulkheadPolicy([tool, global], 100);
    const toolGate = deferred();
    const globalGate = deferred();
    // Holds the tool slot only, then one holding the global slot only.
    void bulkheadPolicy([tool], 0).execute(() => toolGate.promise, context());
    void bulkheadPolicy([global], 0).execute(() => globalGate.promise, context());
    const waiting = settle(policy.execute(async () => "x", context()));
    await vi.advanceTimersByTimeAsync(60);
    toolGate.resolve();
    await vi.advanceTimersByTimeAsync(39);
    expect(waiting.done).toBe(false);
    expect(tool.inFlight).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(waiting.error).toMatchObject({ code: ErrorCode.QueueTimeout });
    expect((waiting.error as GatewayError).message).toContain("global");
    expect(tool.inFlight).toBe(0);
    globalGate.resolve();
  });

  it("releases the earlier slots when cancelled while waiting for a later bulkhead", async () => {
    const tool = bulkhead(2, 5, 0, "tool");
    const upstream = bulkhead(1, 5, 0, "upstream");
    const policy = bulkheadPolicy([tool, upstream], 0);
    const gate = deferred();
    void policy.execute(() => gate.promise, context());
    const controller = new AbortController();
    const waiting = settle(policy.execute(async () => "x", context({ signal: controller.signal })));
    await vi.advanceTimersByTimeAsync(0);
    expect(tool.inFlight).toBe(2);
    expect(upstream.queued).toBe(1);
    controller.abort();
    await vi.advanceTimersByTimeAsync(0);
    expect(waiting.error).toMatchObject({ code: ErrorCode.Cancelled });
    expect(tool.inFlight).toBe(1);
    expect(upstream.queued).toBe(0);
    gate.resolve();
    await vi.runAllTimersAsync();
    expect([tool.inFlight, upstream.inFlight]).toEqual([0, 0]);
  });

  it("releases every slot when the call throws", async () => {
    const tool = bulkhead(1, 0);
    const upstream = bulkhead(1, 0);
    const policy = bulkheadPolicy([tool, upstream], 0);
    await expect(
      policy.execute(async () => {
        throw new Error("boom");
      }, context()),
    ).rejects.toThrow("boom");
    expect([tool.inFlight, upstream.inFlight]).toEqual([0, 0]);
  });
});
