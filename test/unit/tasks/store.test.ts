import { describe, expect, it } from "vitest";
import type { TaskRecord } from "../../../src/tasks/model.ts";
import { MemoryTaskStore } from "../../../src/tasks/store.ts";

function record(key: string, extra: Partial<TaskRecord> = {}): TaskRecord {
  return {
    key,
    handle: `tg1.${key}`,
    origin: "gateway",
    upstream: "faults",
    taskId: key,
    principalId: "alice",
    sessionId: "s1",
    tool: "faults__slow",
    createdAt: new Date(0).toISOString(),
    expiresAt: 1_000,
    status: "working",
    ...extra,
  };
}

describe("memory task store", () => {
  it("forgets a record once it expires", async () => {
    let now = 0;
    const store = new MemoryTaskStore({ maxTasks: () => 10, now: () => now });
    await store.put(record("a"));
    expect(await store.get("a")).toBeDefined();
    now = 1_000;
    expect(await store.get("a")).toBeUndefined();
    expect(await store.list("alice")).toEqual([]);
  });

  it("makes room by dropping the oldest finished task, never a running one", async () => {
    const store = new MemoryTaskStore({ maxTasks: () => 2, now: () => 0 });
    await store.put(record("running"));
    await store.put(record("done", { status: "completed", outcome: { result: {} } }));
    expect(await store.put(record("new"))).toBe(true);
    expect(await store.get("running")).toBeDefined();
    expect(await store.get("done")).toBeUndefined();
    expect(await store.put(record("refused"))).toBe(false);
    expect(await store.get("refused")).toBeUndefined();
  });

  it("lists only the principal's records and merges updates", async () => {
    const store = new MemoryTaskStore({ maxTasks: () => 10, now: () => 0 });
    await store.put(record("a"));
    await store.put(record("b", { principalId: "bob" }));
    await store.update("a", { status: "completed", message: "done" });
    const mine = await store.list("alice");
    expect(mine.map((r) => [r.key, r.status, r.message])).toEqual([["a", "completed", "done"]]);
    expect(await store.update("missing", { status: "failed" })).toBeUndefined();
  });
});
