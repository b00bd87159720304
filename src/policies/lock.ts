/**
 * Exclusive locks: one call at a time per tool, per tool and argument value (`key`), or across the
 * tools of a `group`. FIFO fair, bounded waits, cancellation leaves the queue, and a lock is always
 * released in `finally` (error, timeout, cancellation). A free lock has no map entry: no leak.
 */
import { ErrorCode, GatewayError } from "../errors.ts";
import { InFlightTable } from "../in-flight.ts";
import { abortError } from "./abort.ts";
import { compileArgPath } from "./arg-path.ts";
import { type Cluster, lockUnavailable } from "./cluster.ts";
import type { CallContext, Policy, PolicyFn } from "./types.ts";
import { WaitQueue } from "./wait-queue.ts";

export interface LockOptions {
  /** Argument the lock is keyed by (dotted path or JSON pointer); undefined: one lock for the whole tool. */
  key: string | undefined;
  /** Tools with the same group share locks; undefined: the tool's own. */
  group: string | undefined;
  /** Longest wait for the lock; 0: no limit of its own (the call deadline still bounds it). */
  timeoutMs: number;
}

interface HeldLock {
  acquiredAt: number;
  readonly queue: WaitQueue;
}

export class LockManager {
  /** Not a Map: one entry per locked call churned it, which V8 punishes after a full GC (src/in-flight.ts). */
  readonly #held = new InFlightTable<HeldLock>();

  /** Locks held right now (free locks are forgotten). */
  get size(): number {
    return this.#held.size;
  }

  isHeld(id: string): boolean {
    return this.#held.has(id);
  }

  /** Calls waiting for lock `id`. */
  waiting(id: string): number {
    return this.#held.get(id)?.queue.size ?? 0;
  }

  /** Takes lock `id`, waiting in FIFO order at most `timeoutMs` (0: until cancelled). */
  acquire(id: string, ctx: CallContext, timeoutMs: number): Promise<void> {
    const now = performance.now();
    const held = this.#held.get(id);
    if (held === undefined) {
      this.#held.set(id, { acquiredAt: now, queue: new WaitQueue() });
      this.#emitAcquired(id, ctx, 0);
      return Promise.resolve();
    }
    if (ctx.signal.aborted) return Promise.reject(abortError(ctx, "lock", `before waiting for lock ${id}`));
    const wait = held.queue.wait(ctx, {
      priority: 0,
      waitUntil: timeoutMs > 0 ? now + timeoutMs : Number.POSITIVE_INFINITY,
      onTimeout: (waitMs) => {
        this.#emitRejected(id, ctx, "LockTimeout", waitMs);
        return new GatewayError(
          ErrorCode.LockTimeout,
          `waited ${Math.round(waitMs)} ms for lock ${id} held by another call: retry later, or raise lock.timeoutMs`,
          { upstream: ctx.upstream, tool: ctx.tool, policy: "lock", data: { lock: id, timeoutMs } },
        );
      },
      onAbort: (waitMs) => {
        this.#emitRejected(id, ctx, "Cancelled", waitMs);
        return abortError(ctx, "lock", `while waiting for lock ${id}`);
      },
    });
    ctx.events.emit({
      type: "lockWait",
      upstream: ctx.upstream,
      tool: ctx.tool,
      attempt: ctx.attempt,
      lock: id,
      waiting: held.queue.size,
    });
    return wait;
  }

  /** Releases lock `id`: the next waiter gets it, or the entry goes away. */
  release(id: string, ctx: CallContext): void {
    const held = this.#held.get(id);
    if (held === undefined) return;
    const now = performance.now();
    ctx.events.emit({
      type: "lockReleased",
      upstream: ctx.upstream,
      tool: ctx.tool,
      attempt: ctx.attempt,
      lock: id,
      heldMs: now - held.acquiredAt,
    });
    const next = held.queue.grantNext();
    if (next === undefined) {
      this.#held.delete(id);
      return;
    }
    held.acquiredAt = now;
    this.#emitAcquired(id, next.ctx, now - next.enqueuedAt);
  }

  #emitAcquired(id: string, ctx: CallContext, waitMs: number): void {
    ctx.events.emit({
      type: "lockAcquired",
      upstream: ctx.upstream,
      tool: ctx.tool,
      attempt: ctx.attempt,
      lock: id,
      waitMs,
    });
  }

  #emitRejected(id: string, ctx: CallContext, code: "LockTimeout" | "Cancelled", waitMs: number): void {
    ctx.events.emit({
      type: "lockRejected",
      upstream: ctx.upstream,
      tool: ctx.tool,
      attempt: ctx.attempt,
      lock: id,
      code,
      waitMs,
    });
  }
}

/**
 * The lock id of a call: `group ?? tool`, plus the JSON of the key argument when keyed, e.g.
 * `fs-writes["/tmp/a"]` (a missing value is one lock, `[undefined]`). JSON keeps `"1"` and `1` apart.
 */
export function lockIdFor(options: Pick<LockOptions, "key" | "group">): (ctx: CallContext) => string {
  const { key, group } = options;
  if (key === undefined) return group === undefined ? (ctx) => ctx.tool : () => group;
  const read = compileArgPath(key);
  return (ctx) => `${group ?? ctx.tool}[${JSON.stringify(read(ctx.args)) ?? "undefined"}]`;
}

/**
 * Holds the call's lock around it. With a cluster, the local lock (FIFO among this replica's calls) comes
 * first, then the cluster lease, within the same `timeoutMs`; a lease lost mid-call aborts the call with
 * LockUnavailable, and the lease's fencing token travels upstream in `_meta["toolgate/fencing"]`.
 */
export function lockPolicy(locks: LockManager, options: LockOptions, cluster?: Cluster): Policy {
  const idOf = lockIdFor(options);
  const run = async <T>(fn: PolicyFn<T>, ctx: CallContext, id: string): Promise<T> => {
    await locks.acquire(id, ctx, options.timeoutMs);
    try {
      return await fn(ctx);
    } finally {
      locks.release(id, ctx);
    }
  };
  if (cluster === undefined) {
    return { name: "lock", execute: (fn, ctx) => run(fn, ctx, idOf(ctx)) };
  }
  const runLeased = async <T>(fn: PolicyFn<T>, ctx: CallContext, id: string): Promise<T> => {
    const started = performance.now();
    await locks.acquire(id, ctx, options.timeoutMs);
    let lease: Awaited<ReturnType<Cluster["acquireLease"]>>;
    try {
      const waitUntil = options.timeoutMs > 0 ? started + options.timeoutMs : Number.POSITIVE_INFINITY;
      lease = await cluster.acquireLease(id, ctx, waitUntil);
    } catch (err) {
      locks.release(id, ctx);
      throw err;
    }
    if (lease === undefined) {
      try {
        return await fn(ctx);
      } finally {
        locks.release(id, ctx);
      }
    }
    const controller = new AbortController();
    const forward = () => controller.abort(ctx.signal.reason);
    if (ctx.signal.aborted) forward();
    else ctx.signal.addEventListener("abort", forward, { once: true });
    lease.onLost = (why) => {
      cluster.counters.locksRefused++;
      controller.abort(lockUnavailable(ctx, id, `the call was stopped: its cluster lease was lost (${why})`));
    };
    try {
      return await fn({ ...ctx, signal: controller.signal, fencing: { lock: id, token: lease.token } });
    } finally {
      ctx.signal.removeEventListener("abort", forward);
      // The local lock passes on once the store has the lease back, so the next local caller finds it free.
      void cluster.releaseLease(lease).finally(() => locks.release(id, ctx));
    }
  };
  return { name: "lock", execute: (fn, ctx) => runLeased(fn, ctx, idOf(ctx)) };
}
