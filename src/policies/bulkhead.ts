/**
 * Concurrency limit with a bounded priority queue (higher priority first, FIFO within a priority).
 * A full queue fails at once, a wait has a time limit, a cancelled waiter leaves the queue at once:
 * memory is bounded by `queueSize` and nothing waits forever.
 *
 * The router keeps one Bulkhead per tool, one per upstream and one global, and a call holds all three
 * (`bulkheadPolicy`). They are always taken in that order, so two calls never wait on each other in a
 * cycle, and a failed or cancelled later acquisition releases the earlier slots.
 */
import { ErrorCode, GatewayError } from "../errors.ts";
import { abortError } from "./abort.ts";
import type { CallContext, Policy, PolicyFn } from "./types.ts";
import { WaitQueue } from "./wait-queue.ts";

export interface BulkheadOptions {
  /** Names the limit in errors and events, e.g. `tool "fs__write_file"`, `upstream "fs"`, `global`. */
  name: string;
  maxInFlight: number;
  /** Calls allowed to wait; 0: none (a busy bulkhead fails at once with QueueFull). */
  queueSize: number;
  /** Longest wait in this queue; 0: no limit of its own (the call deadline still bounds it). */
  queueTimeoutMs: number;
}

type RejectCode = "QueueFull" | "QueueTimeout" | "Cancelled";

export class Bulkhead {
  readonly name: string;
  readonly maxInFlight: number;
  readonly queueSize: number;
  readonly queueTimeoutMs: number;
  #inFlight = 0;
  readonly #queue = new WaitQueue();

  constructor(options: BulkheadOptions) {
    this.name = options.name;
    this.maxInFlight = options.maxInFlight;
    this.queueSize = options.queueSize;
    this.queueTimeoutMs = options.queueTimeoutMs;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#queue.size;
  }

  /** Takes a slot when one is free and nobody waits (waiters keep their turn). */
  tryAcquire(): boolean {
    if (this.#inFlight >= this.maxInFlight || this.#queue.size > 0) return false;
    this.#inFlight++;
    return true;
  }

  /** Takes a slot, waiting until `waitUntil` (performance.now() ms) or this queue's own timeout. */
  acquire(ctx: CallContext, waitUntil = Number.POSITIVE_INFINITY): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (this.#queue.size >= this.queueSize) {
      this.#emitRejected(ctx, "QueueFull", 0);
      return Promise.reject(
        this.#error(
          ctx,
          ErrorCode.QueueFull,
          `the queue of ${this.name} is full (${this.#inFlight} in flight, ${this.#queue.size} waiting): ` +
            "retry later, or raise its maxInFlight or queueSize",
        ),
      );
    }
    if (ctx.signal.aborted)
      return Promise.reject(abortError(ctx, "bulkhead", `before queueing in ${this.name}`));
    const own = this.queueTimeoutMs > 0 ? performance.now() + this.queueTimeoutMs : Number.POSITIVE_INFINITY;
    const wait = this.#queue.wait(ctx, {
      priority: ctx.priority,
      waitUntil: Math.min(waitUntil, own),
      onTimeout: (waitMs) => {
        this.#emitRejected(ctx, "QueueTimeout", waitMs);
        return this.#error(
          ctx,
          ErrorCode.QueueTimeout,
          `waited ${Math.round(waitMs)} ms in the queue of ${this.name} without a slot ` +
            `(${this.#inFlight} in flight): retry later, or raise its maxInFlight or queueTimeoutMs`,
        );
      },
      onAbort: (waitMs) => {
        this.#emitRejected(ctx, "Cancelled", waitMs);
        return abortError(ctx, "bulkhead", `while queued in ${this.name}`);
      },
    });
    ctx.events.emit({
      type: "queued",
      upstream: ctx.upstream,
      tool: ctx.tool,
      attempt: ctx.attempt,
      bulkhead: this.name,
      priority: ctx.priority,
      queued: this.#queue.size,
    });
    return wait;
  }

  /** Frees a slot, handing it straight to the first waiter if there is one. */
  release(): void {
    const next = this.#queue.grantNext();
    if (next === undefined) {
      this.#inFlight--;
      return;
    }
    const { ctx } = next;
    ctx.events.emit({
      type: "dequeued",
      upstream: ctx.upstream,
      tool: ctx.tool,
      attempt: ctx.attempt,
      bulkhead: this.name,
      waitMs: performance.now() - next.enqueuedAt,
    });
  }

  #emitRejected(ctx: CallContext, code: RejectCode, waitMs: number): void {
    ctx.events.emit({
      type: "rejected",
      upstream: ctx.upstream,
      tool: ctx.tool,
      attempt: ctx.attempt,
      bulkhead: this.name,
      code,
      waitMs,
    });
  }

  #error(ctx: CallContext, code: ErrorCode, message: string): GatewayError {
    return new GatewayError(code, message, {
      upstream: ctx.upstream,
      tool: ctx.tool,
      policy: "bulkhead",
      data: { bulkhead: this.name, maxInFlight: this.maxInFlight, queueSize: this.queueSize },
    });
  }
}

/**
 * Holds a slot of every bulkhead (in the given order: tool, upstream, global) around the call. The
 * queue-timeout budget is shared: all the waits together last at most `queueTimeoutMs` (0: no limit).
 */
export function bulkheadPolicy(bulkheads: readonly Bulkhead[], queueTimeoutMs: number): Policy {
  const count = bulkheads.length;
  const releaseAll = (held: number) => {
    for (let i = 0; i < held; i++) (bulkheads[i] as Bulkhead).release();
  };
  // The fast path's settle handlers: every slot is held, so they need nothing of the call.
  const releasedWith = <T>(value: T): T => {
    releaseAll(count);
    return value;
  };
  const releasedThrowing = (err: unknown): never => {
    releaseAll(count);
    throw err;
  };
  const run = async <T>(fn: PolicyFn<T>, ctx: CallContext, acquired: number): Promise<T> => {
    let held = acquired;
    try {
      const waitUntil = queueTimeoutMs > 0 ? performance.now() + queueTimeoutMs : Number.POSITIVE_INFINITY;
      for (; held < count; held++) await (bulkheads[held] as Bulkhead).acquire(ctx, waitUntil);
      return await fn(ctx);
    } finally {
      releaseAll(held);
    }
  };
  return {
    name: "bulkhead",
    execute<T>(fn: PolicyFn<T>, ctx: CallContext): Promise<T> {
      let held = 0;
      while (held < count && (bulkheads[held] as Bulkhead).tryAcquire()) held++;
      if (held < count) return run(fn, ctx, held);
      // Fast path: every slot free, so no promise per bulkhead, no timers and no async layer.
      let answer: Promise<T>;
      try {
        answer = fn(ctx);
      } catch (err) {
        releaseAll(count);
        return Promise.reject(err);
      }
      return answer.then(releasedWith, releasedThrowing);
    },
  };
}
