import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Alarms } from "../../../src/policies/alarms.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("Alarms", () => {
  it("fires each alarm once, in the order of its time, and never a cancelled one", async () => {
    const alarms = new Alarms();
    const fired: string[] = [];
    alarms.set(30, () => fired.push("c"));
    alarms.set(10, () => fired.push("a"));
    const cancelled = alarms.set(15, () => fired.push("cancelled"));
    alarms.set(20, () => fired.push("b"));
    alarms.cancel(cancelled);
    await vi.advanceTimersByTimeAsync(9);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(20);
    expect(fired).toEqual(["a", "b", "c"]);
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual(["a", "b", "c"]);
    expect(alarms.size).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("keeps one timer however many alarms wait, and arms it again only for an earlier alarm", async () => {
    const alarms = new Alarms();
    const fired: number[] = [];
    const arming = vi.spyOn(globalThis, "setTimeout");
    for (let ms = 100; ms <= 1000; ms += 100) alarms.set(ms, () => fired.push(ms));
    expect(vi.getTimerCount()).toBe(1);
    expect(arming).toHaveBeenCalledTimes(1);
    alarms.set(50, () => fired.push(50));
    expect(vi.getTimerCount()).toBe(1);
    expect(arming).toHaveBeenCalledTimes(2);
    arming.mockRestore();
    await vi.advanceTimersByTimeAsync(50);
    expect(fired).toEqual([50]);
    await vi.advanceTimersByTimeAsync(950);
    expect(fired).toEqual([50, 100, 200, 300, 400, 500, 600, 700, 800, 900, 1000]);
  });

  it("restarts an alarm from now: it fires a full period after the restart, not at its first time", async () => {
    const alarms = new Alarms();
    const fired: string[] = [];
    const idle = alarms.set(50, () => fired.push("idle"));
    await vi.advanceTimersByTimeAsync(40);
    alarms.restart(idle, 50);
    await vi.advanceTimersByTimeAsync(49);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(fired).toEqual(["idle"]);
    alarms.restart(idle, 50); // already fired: nothing
    await vi.advanceTimersByTimeAsync(100);
    expect(fired).toEqual(["idle"]);
  });

  it("keeps the heap in order through many cancellations and restarts", async () => {
    const alarms = new Alarms();
    const t0 = performance.now();
    const firedAt = new Map<number, number>();
    const due = new Map<number, number>();
    const all = Array.from({ length: 200 }, (_, id) => {
      const ms = ((id * 37) % 200) + 1;
      due.set(id, ms);
      return alarms.set(ms, () => firedAt.set(id, performance.now() - t0));
    });
    for (const [id, alarm] of all.entries()) {
      if (id % 3 === 0) {
        alarms.cancel(alarm);
        due.delete(id);
      } else if (id % 3 === 1) {
        alarms.restart(alarm, 300 + id);
        due.set(id, 300 + id);
      }
    }
    await vi.advanceTimersByTimeAsync(1000);
    expect(firedAt).toEqual(due);
    expect(alarms.size).toBe(0);
  });

  it("waits out a limit longer than setTimeout takes (2^31 − 1 ms), which node would fire after 1 ms", async () => {
    const alarms = new Alarms();
    const fired: string[] = [];
    const days30 = 30 * 24 * 3600 * 1000;
    alarms.set(days30, () => fired.push("late"));
    await vi.advanceTimersByTimeAsync(2 ** 31);
    expect(fired).toEqual([]);
    await vi.advanceTimersByTimeAsync(days30 - 2 ** 31);
    expect(fired).toEqual(["late"]);
  });

  it("takes alarms set while another one fires", async () => {
    const alarms = new Alarms();
    const fired: string[] = [];
    alarms.set(10, () => {
      fired.push("first");
      alarms.set(10, () => fired.push("second"));
    });
    await vi.advanceTimersByTimeAsync(10);
    expect(fired).toEqual(["first"]);
    await vi.advanceTimersByTimeAsync(10);
    expect(fired).toEqual(["first", "second"]);
  });
});
