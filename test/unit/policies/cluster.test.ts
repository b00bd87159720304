/**
 * The cluster side of locks, caps and rate limits, with two "replicas" (two Cluster objects) sharing one
 * in-memory store on a fake clock; `setAvailable(false)` plays a lost Redis.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { Bulkhead } from "../../../src/policies/bulkhead.ts";
import { Cluster } from "../../../src/policies/cluster.ts";
import { LockManager, lockPolicy } from "../../../src/policies/lock.ts";
import { sharedCapsPolicy } from "../../../src/policies/shared-caps.ts";
import type { CallContext } from "../../../src/policies/types.ts";
import { RateLimiter } from "../../../src/server/auth/authorize.ts";
import { MemoryStores } from "../../../src/stores/memory.ts";
import { context, settle } from "./helpers.ts";

const TTL = 300;

beforeEach(() => {
  vi.useFakeTimers({
    toFake: ["setTimeout", "clearTimeout", "setInterval", "clearInterval", "Date", "performance"],
  });
});
afterEach(() => {
  vi.useRealTimers();
});

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener("abort", () => {
      clearTimeout(timer);
      reject(signal.reason);
    });
  });

function replica(stores: MemoryStores, name: string, locks: "refuse" | "local" = "refuse") {
  return new Cluster({
    stores,
    instanceId: name,
    leaseTtlMs: TTL,
    replicas: 2,
    pollMs: 10,
    locksWhenUnavailable: locks,
  });
}

function codeOf(err: unknown): string | undefined {
  return err instanceof GatewayError ? err.code : undefined;
}

describe("cluster locks", () => {
  it("never overlaps a key across replicas, runs other keys in parallel, and hands out growing fencing tokens", async () => {
    const stores = new MemoryStores();
    const replicas = [replica(stores, "a"), replica(stores, "b")];
    const policies = replicas.map((c) =>
      lockPolicy(new LockManager(), { key: "path", group: undefined, timeoutMs: 0 }, c),
    );
    const active = new Map<string, number>();
    const peak = new Map<string, number>();
    let peakAll = 0;
    const tokens: number[] = [];
    const write = async (ctx: CallContext) => {
      const path = String(ctx.args.path);
      tokens.push(ctx.fencing?.token ?? -1);
      active.set(path, (active.get(path) ?? 0) + 1);
      peak.set(path, Math.max(peak.get(path) ?? 0, active.get(path) ?? 0));
      peakAll = Math.max(
        peakAll,
        [...active.values()].reduce((a, b) => a + b, 0),
      );
      await sleep(50);
      active.set(path, (active.get(path) ?? 1) - 1);
    };
    const calls = ["a", "b", "a", "b", "a", "b"].map((path, i) =>
      (policies[i % 2] as ReturnType<typeof lockPolicy>).execute(write, context({ args: { path } })),
    );
    await vi.advanceTimersByTimeAsync(2_000);
    await Promise.all(calls);
    expect(Object.fromEntries(peak)).toEqual({ a: 1, b: 1 });
    expect(peakAll).toBe(2);
    expect(tokens).toHaveLength(6);
    expect(new Set(tokens).size).toBe(6);
    expect(tokens.every((t) => t > 0)).toBe(true);
    for (const c of replicas) c.stop();
  });

  it("refuses with LockUnavailable and does not run the call while the store is away", async () => {
    const stores = new MemoryStores();
    const cluster = replica(stores, "a");
    const policy = lockPolicy(new LockManager(), { key: undefined, group: undefined, timeoutMs: 0 }, cluster);
    stores.setAvailable(false);
    const fn = vi.fn(async () => "ran");
    const result = settle(policy.execute(fn, context()));
    await vi.advanceTimersByTimeAsync(10);
    expect(codeOf(result.error)).toBe(ErrorCode.LockUnavailable);
    expect(fn).not.toHaveBeenCalled();
    expect(cluster.counters.locksRefused).toBe(1);

    stores.setAvailable(true);
    await expect(policy.execute(fn, context())).resolves.toBe("ran");
    cluster.stop();
  });

  it("falls back to the local lock when configured to", async () => {
    const stores = new MemoryStores();
    const cluster = replica(stores, "a", "local");
    const policy = lockPolicy(new LockManager(), { key: undefined, group: undefined, timeoutMs: 0 }, cluster);
    stores.setAvailable(false);
    await expect(policy.execute(async () => "ran", context())).resolves.toBe("ran");
    expect(cluster.counters.lockFallbacks).toBe(1);
    cluster.stop();
  });

  it("stops a call with LockUnavailable when its lease cannot be renewed before it expires", async () => {
    const stores = new MemoryStores();
    const cluster = replica(stores, "a");
    const policy = lockPolicy(new LockManager(), { key: undefined, group: undefined, timeoutMs: 0 }, cluster);
    const result = settle(policy.execute((ctx) => sleep(10_000, ctx.signal), context()));
    await vi.advanceTimersByTimeAsync(TTL); // renewed while the store answers
    expect(result.done).toBe(false);
    stores.setAvailable(false);
    await vi.advanceTimersByTimeAsync(TTL);
    expect(codeOf(result.error)).toBe(ErrorCode.LockUnavailable);
    expect((result.error as Error).message).toMatch(/lease was lost/);
    expect(cluster.counters.leasesLost).toBe(1);
    cluster.stop();
  });

  it("lets another replica take the lock once a dead replica's lease expires", async () => {
    const stores = new MemoryStores();
    const dead = replica(stores, "dead");
    const alive = replica(stores, "alive");
    const lock = { key: undefined, group: undefined, timeoutMs: 0 };
    void settle(lockPolicy(new LockManager(), lock, dead).execute(() => new Promise(() => {}), context()));
    await vi.advanceTimersByTimeAsync(TTL * 2);
    dead.stop(); // the process died: no more renewals
    const next = settle(lockPolicy(new LockManager(), lock, alive).execute(async () => "ran", context()));
    await vi.advanceTimersByTimeAsync(TTL / 2);
    expect(next.done).toBe(false);
    await vi.advanceTimersByTimeAsync(TTL);
    expect(next.value).toBe("ran");
    alive.stop();
  });

  it("times out a wait for a lease held elsewhere with LockTimeout", async () => {
    const stores = new MemoryStores();
    const [a, b] = [replica(stores, "a"), replica(stores, "b")];
    const lock = { key: undefined, group: undefined, timeoutMs: 100 };
    void settle(lockPolicy(new LockManager(), lock, a).execute(() => sleep(1_000), context()));
    const waiting = settle(lockPolicy(new LockManager(), lock, b).execute(async () => "ran", context()));
    await vi.advanceTimersByTimeAsync(150);
    expect(codeOf(waiting.error)).toBe(ErrorCode.LockTimeout);
    await vi.advanceTimersByTimeAsync(1_000);
    a.stop();
    b.stop();
  });
});

describe("cluster caps", () => {
  function capped(cluster: Cluster, limit: number) {
    const fallback = new Bulkhead({
      name: "global (fallback)",
      maxInFlight: Math.max(1, Math.floor(limit / 2)),
      queueSize: 100,
      queueTimeoutMs: 0,
    });
    return sharedCapsPolicy(cluster, [{ name: "global", limit, fallback }], 0);
  }

  async function peakOf(policies: ReturnType<typeof capped>[], calls: number): Promise<number> {
    let active = 0;
    let peak = 0;
    const work = async () => {
      peak = Math.max(peak, ++active);
      await sleep(40);
      active--;
    };
    const all = Array.from({ length: calls }, (_, i) =>
      (policies[i % policies.length] as ReturnType<typeof capped>).execute(work, context()),
    );
    await vi.advanceTimersByTimeAsync(5_000);
    await Promise.all(all);
    return peak;
  }

  it("counts a cap across replicas, and falls back to limit / replicas per replica while the store is away", async () => {
    const stores = new MemoryStores();
    const replicas = [replica(stores, "a"), replica(stores, "b")];
    const policies = replicas.map((c) => capped(c, 3));
    expect(await peakOf(policies, 12)).toBe(3);

    stores.setAvailable(false);
    // 3 / 2 replicas = 1 each: 2 at once in all.
    expect(await peakOf(policies, 8)).toBe(2);
    expect(replicas[0]?.counters.capFallbacks).toBe(4);

    stores.setAvailable(true);
    expect(await peakOf(policies, 12)).toBe(3);
    for (const c of replicas) c.stop();
  });
});

describe("shared rate limits", () => {
  it("counts a principal's calls across replicas, and locally divided while the store is away", async () => {
    const stores = new MemoryStores();
    const rules = () => ({ allow: ["*"], deny: [], rateLimit: { perMinute: 4 } });
    const limiters = [0, 1].map(
      () => new RateLimiter(rules, { shared: { rates: stores.rates, replicas: 2 } }),
    );
    const principal = { id: "p", kind: "apiKey" as const, scopes: [] };
    const admit = async (i: number) => {
      try {
        (await (limiters[i % 2] as RateLimiter).admit(principal))();
        return "ok";
      } catch (err) {
        return codeOf(err);
      }
    };
    const shared = await Promise.all(Array.from({ length: 8 }, (_, i) => admit(i)));
    expect(shared.filter((r) => r === "ok")).toHaveLength(4);
    expect(shared.filter((r) => r === ErrorCode.RateLimited)).toHaveLength(4);

    stores.setAvailable(false);
    const local = await Promise.all(Array.from({ length: 8 }, (_, i) => admit(i)));
    // 4 / 2 replicas = 2 per replica.
    expect(local.filter((r) => r === "ok")).toHaveLength(4);
  });
});
