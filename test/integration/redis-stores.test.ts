/**
 * The SSE event store and the task store on a real redis-server: what one replica writes another reads
 * (two RedisStores connections stand for two replicas), the same bounds as the memory stores, expiry, and
 * the event store's fallback to this replica's memory while Redis is away.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RedisStores } from "../../src/stores/redis.ts";
import { RedisEventStore } from "../../src/stores/redis-events.ts";
import { StoreUnavailable } from "../../src/stores/store.ts";
import type { TaskRecord } from "../../src/tasks/model.ts";
import { RedisTaskStore } from "../../src/tasks/redis-store.ts";
import { eventually } from "../helpers/gateway.ts";
import { RedisServer, redisServerBinary } from "../helpers/redis.ts";

const HAS_REDIS = redisServerBinary() !== undefined;
if (!HAS_REDIS)
  console.warn("Redis store tests skipped: redis-server is not installed (apt-get install redis-server)");

function connect(url: string, prefix: string, instanceId: string): RedisStores {
  return new RedisStores({
    url,
    keyPrefix: prefix,
    replicas: 2,
    commandTimeoutMs: 1_000,
    pingMs: 100,
    instanceId,
  });
}

function record(key: string, patch: Partial<TaskRecord> = {}): TaskRecord {
  return {
    key,
    handle: `handle-${key}`,
    origin: "gateway",
    upstream: "fs",
    taskId: key,
    principalId: "alice",
    sessionId: "s1",
    tool: "fs__slow",
    createdAt: new Date().toISOString(),
    expiresAt: Date.now() + 60_000,
    status: "working",
    message: "working",
    ...patch,
  };
}

describe.skipIf(!HAS_REDIS)("shared stores on a real redis-server", () => {
  let redis: RedisServer;
  let a: RedisStores;
  let b: RedisStores;
  let prefix = 0;
  /** A fresh key prefix per test: tests do not see each other's keys. */
  const next = () => `redis-stores-${process.pid}-${++prefix}:`;

  beforeAll(async () => {
    redis = await RedisServer.start();
    a = connect(redis.url, "unused:", "a");
    b = connect(redis.url, "unused:", "b");
    expect(await a.waitAvailable(10_000)).toBe(true);
    expect(await b.waitAvailable(10_000)).toBe(true);
  }, 30_000);

  afterAll(async () => {
    await a?.close();
    await b?.close();
    await redis?.stop();
  });

  /** The access of `stores` under a prefix of its own. */
  const under = (stores: RedisStores, keyPrefix: string) => ({
    ...stores.access,
    key: (k: string) => `${keyPrefix}${k}`,
  });

  describe("SSE events", () => {
    it("replays on one replica what another recorded, after the client's last event", async () => {
      const p = next();
      const writer = new RedisEventStore(under(a, p));
      const reader = new RedisEventStore(under(b, p));
      await writer.append("s_x1", "s_x1_0", "");
      for (let i = 1; i <= 4; i++) await writer.append("s_x1", `s_x1_${i}`, `{"n":${i}}`);
      expect(await reader.after("s_x1", "s_x1_2")).toEqual([
        { id: "s_x1_3", data: '{"n":3}' },
        { id: "s_x1_4", data: '{"n":4}' },
      ]);
      expect(await reader.after("s_x1", "s_x1_0")).toHaveLength(4);
      expect(await reader.after("s_x1", "s_x1_4")).toEqual([]);
      // Another stream, or one never recorded: nothing to resume.
      expect(await reader.after("s_x2", "s_x2_1")).toBeUndefined();
    });

    it("keeps the last maxEventsPerStream events of a stream, with a TTL, and refuses a point it dropped", async () => {
      const p = next();
      const writer = new RedisEventStore(under(a, p), { maxEventsPerStream: 3, ttlMs: 60_000 });
      const reader = new RedisEventStore(under(b, p), { maxEventsPerStream: 3, ttlMs: 60_000 });
      for (let i = 0; i <= 6; i++) await writer.append("t_1", `t_1_${i}`, `{"n":${i}}`);
      const { client } = a.access;
      expect(await client.llen(`${p}events:t_1`)).toBe(3);
      const ttl = await client.pttl(`${p}events:t_1`);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(60_000);
      // Held: 4, 5, 6. After 3 (just before the oldest) still works; after 2 lost event 3.
      expect((await reader.after("t_1", "t_1_3"))?.map((e) => e.id)).toEqual(["t_1_4", "t_1_5", "t_1_6"]);
      expect(await reader.after("t_1", "t_1_2")).toBeUndefined();
    });

    it("refuses to replay across a gap (events Redis missed) unless the replica's own memory has them", async () => {
      const p = next();
      const { client } = a.access;
      // What Redis holds after an outage in the middle of a stream: event 2 never got there.
      await client.rpush(`${p}events:g_1`, "g_1_0\n", 'g_1_1\n{"n":1}', 'g_1_3\n{"n":3}');
      const other = new RedisEventStore(under(b, p));
      expect(await other.after("g_1", "g_1_0")).toBeUndefined();
      expect(await other.after("g_1", "g_1_1")).toBeUndefined();
      expect(await other.after("g_1", "g_1_3")).toEqual([]);
      // The replica that wrote the stream has every event in memory and replays from there.
      const holder = new RedisEventStore(under(a, `${p}holder:`));
      for (let i = 0; i <= 3; i++) await holder.append("g_1", `g_1_${i}`, i === 0 ? "" : `{"n":${i}}`);
      await client.lrem(`${p}holder:events:g_1`, 1, 'g_1_2\n{"n":2}');
      expect((await holder.after("g_1", "g_1_1"))?.map((e) => e.id)).toEqual(["g_1_2", "g_1_3"]);
    });

    it("expires a stream's events after ttlMs", async () => {
      const p = next();
      const writer = new RedisEventStore(under(a, p), { ttlMs: 200 });
      const reader = new RedisEventStore(under(b, p), { ttlMs: 200 });
      await writer.append("u_1", "u_1_0", "");
      await writer.append("u_1", "u_1_1", "{}");
      expect(await reader.after("u_1", "u_1_0")).toHaveLength(1);
      await eventually(async () => (await reader.after("u_1", "u_1_0")) === undefined, 10_000);
    });

    it("falls back to the replica's own memory while Redis is away (tasks fail with a clear error), and shares again when it is back", async () => {
      const p = next();
      const store = new RedisEventStore(under(a, p));
      await store.append("v_1", "v_1_0", "");
      await store.append("v_1", "v_1_1", '{"n":1}');
      await redis.pause();
      try {
        await eventually(() => !a.health.available, 10_000);
        // Appends fail on Redis (the transport ignores that) but the replica still holds the stream.
        await expect(store.append("v_1", "v_1_2", '{"n":2}')).rejects.toBeInstanceOf(StoreUnavailable);
        expect((await store.after("v_1", "v_1_0"))?.map((e) => e.id)).toEqual(["v_1_1", "v_1_2"]);
        // Task records have no local copy: the request fails and says why.
        const tasks = new RedisTaskStore(under(a, p), { maxTasks: () => 10 });
        await expect(tasks.get("gateway:1")).rejects.toThrow(/shared task store is unreachable/);
        await expect(tasks.put(record("gateway:1"))).rejects.toThrow(/shared task store is unreachable/);
      } finally {
        await redis.resume();
      }
      await eventually(() => a.health.available && b.health.available, 20_000);
      // Redis came back empty: this replica still answers from memory; new streams are shared again.
      expect((await store.after("v_1", "v_1_1"))?.map((e) => e.id)).toEqual(["v_1_2"]);
      await store.append("w_1", "w_1_0", "");
      await store.append("w_1", "w_1_1", '{"n":1}');
      expect(await new RedisEventStore(under(b, p)).after("w_1", "w_1_0")).toHaveLength(1);
    }, 60_000);
  });

  describe("task records", () => {
    it("lets another replica get, update, list and delete a record", async () => {
      const p = next();
      const one = new RedisTaskStore(under(a, p), { maxTasks: () => 10 });
      const two = new RedisTaskStore(under(b, p), { maxTasks: () => 10 });
      const first = record("gateway:1", { webhook: "https://hooks.example/x" });
      expect(await one.put(first)).toBe(true);
      expect(await two.get("gateway:1")).toEqual(first);

      const outcome = { result: { content: [{ type: "text", text: "done" }], isError: false } };
      const updated = await two.update("gateway:1", { status: "completed", message: "completed", outcome });
      expect(updated).toEqual({ ...first, status: "completed", message: "completed", outcome });
      expect(await one.get("gateway:1")).toEqual(updated);

      await one.put(record("gateway:2", { principalId: "bob" }));
      await one.put(record("gateway:3", { createdAt: new Date(Date.now() + 1_000).toISOString() }));
      expect((await two.list("alice")).map((r) => r.key)).toEqual(["gateway:1", "gateway:3"]);
      expect((await two.list("bob")).map((r) => r.key)).toEqual(["gateway:2"]);

      await two.delete("gateway:1");
      expect(await one.get("gateway:1")).toBeUndefined();
      expect(await one.update("gateway:1", { status: "cancelled" })).toBeUndefined();
      // An update does not bring a deleted record back.
      expect(await one.get("gateway:1")).toBeUndefined();
      expect((await one.list("alice")).map((r) => r.key)).toEqual(["gateway:3"]);
    });

    it("bounds the records cluster-wide: a finished one makes room, running ones never do", async () => {
      const p = next();
      const one = new RedisTaskStore(under(a, p), { maxTasks: () => 2 });
      const two = new RedisTaskStore(under(b, p), { maxTasks: () => 2 });
      expect(await one.put(record("gateway:1"))).toBe(true);
      expect(await two.put(record("gateway:2"))).toBe(true);
      // Full of running gateway tasks: refused, on either replica.
      expect(await one.put(record("gateway:3"))).toBe(false);
      expect(await two.get("gateway:3")).toBeUndefined();
      // A finished one makes room, and is the one dropped.
      await two.update("gateway:1", { status: "completed", outcome: { result: { content: [] } } });
      expect(await one.put(record("gateway:3"))).toBe(true);
      expect(await two.get("gateway:1")).toBeUndefined();
      expect(await two.get("gateway:2")).toBeDefined();
      // A forwarded task's index record is never "running": it makes room too.
      await two.update("gateway:2", { status: "cancelled" });
      expect(await two.put(record("upstream:fs:9", { origin: "upstream", status: undefined }))).toBe(true);
      expect(await one.get("gateway:2")).toBeUndefined();
    });

    it("drops a record at its expiresAt, from get and list", async () => {
      const p = next();
      const store = new RedisTaskStore(under(a, p), { maxTasks: () => 10 });
      await store.put(record("gateway:1", { expiresAt: Date.now() + 150 }));
      await store.put(record("gateway:2"));
      await eventually(async () => (await store.get("gateway:1")) === undefined, 10_000);
      expect((await store.list("alice")).map((r) => r.key)).toEqual(["gateway:2"]);
    });
  });
});
