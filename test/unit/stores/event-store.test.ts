import { describe, expect, it } from "vitest";
import { MemoryEventStore, streamOf } from "../../../src/stores/event-store.ts";

const msg = (n: number) =>
  JSON.stringify({ jsonrpc: "2.0", method: "notifications/progress", params: { progress: n } });

describe("MemoryEventStore", () => {
  it("returns the events after the last one the client saw", () => {
    const store = new MemoryEventStore();
    for (let i = 1; i <= 4; i++) store.append("s_1", `s_1_${i}`, msg(i));
    expect(store.after("s_1", "s_1_2")?.map((e) => e.id)).toEqual(["s_1_3", "s_1_4"]);
    expect(store.after("s_1", "s_1_4")).toEqual([]);
  });

  it("keeps at most maxEventsPerStream events and refuses to resume from a dropped one", () => {
    const store = new MemoryEventStore({ maxStreams: 10, maxEventsPerStream: 2 });
    for (let i = 1; i <= 5; i++) store.append("s_1", `s_1_${i}`, msg(i));
    expect(store.after("s_1", "s_1_3")?.map((e) => e.id)).toEqual(["s_1_4", "s_1_5"]);
    expect(store.after("s_1", "s_1_2")).toBeUndefined();
  });

  it("forgets the oldest stream beyond maxStreams", () => {
    const store = new MemoryEventStore({ maxStreams: 2, maxEventsPerStream: 10 });
    store.append("a_1", "a_1_1", msg(1));
    store.append("b_1", "b_1_1", msg(1));
    store.append("c_1", "c_1_1", msg(1));
    expect(store.streams).toBe(2);
    expect(store.after("a_1", "a_1_1")).toBeUndefined();
    expect(store.after("c_1", "c_1_1")).toEqual([]);
  });

  it("forgets the oldest streams when the bytes held pass maxBytes", () => {
    const store = new MemoryEventStore({ maxBytes: 250 });
    for (const s of ["a", "b", "c"]) store.append(`${s}_1`, `${s}_1_1`, "x".repeat(100));
    expect(store.bytes).toBeLessThanOrEqual(250);
    expect(store.after("a_1", "a_1_0")).toBeUndefined();
    expect(store.after("c_1", "c_1_0")?.map((e) => e.id)).toEqual(["c_1_1"]);
  });

  it("reads the stream id out of an event id", () => {
    expect(streamOf("3f2a-uuid_4_17")).toBe("3f2a-uuid_4");
    expect(streamOf("nonsense")).toBe("");
  });
});
