/**
 * The waiting room shared by the bulkhead and the lock: a queue sorted by priority (FIFO within a
 * priority) where every wait has a time limit and leaves at once when its call is cancelled. A doubly
 * linked list, so removing an expired or cancelled waiter is O(1) and nothing lingers.
 */
import type { GatewayError } from "../errors.ts";
import type { CallContext } from "./types.ts";

export interface Waiter {
  readonly ctx: CallContext;
  readonly priority: number;
  /** performance.now() when it started waiting. */
  readonly enqueuedAt: number;
  prev: Waiter | undefined;
  next: Waiter | undefined;
  timer: ReturnType<typeof setTimeout> | undefined;
  resolve: () => void;
  onAbort: () => void;
}

export interface WaitOptions {
  priority: number;
  /** performance.now() ms when the wait fails; Infinity: only cancellation ends it. */
  waitUntil: number;
  /** The error for a wait that ran out of time (waitMs: how long it waited). */
  onTimeout: (waitMs: number) => GatewayError;
  /** The error for a wait whose call was cancelled. */
  onAbort: (waitMs: number) => GatewayError;
}

export class WaitQueue {
  #head: Waiter | undefined;
  #tail: Waiter | undefined;
  #size = 0;

  get size(): number {
    return this.#size;
  }

  /** Resolves when `grantNext()` picks this waiter; the caller checks `ctx.signal.aborted` first. */
  wait(ctx: CallContext, options: WaitOptions): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const now = performance.now();
      const waiter: Waiter = {
        ctx,
        priority: options.priority,
        enqueuedAt: now,
        prev: undefined,
        next: undefined,
        timer: undefined,
        resolve,
        onAbort: () => {
          this.#remove(waiter);
          reject(options.onAbort(performance.now() - now));
        },
      };
      if (Number.isFinite(options.waitUntil)) {
        waiter.timer = setTimeout(() => {
          this.#remove(waiter);
          reject(options.onTimeout(performance.now() - now));
        }, options.waitUntil - now);
      }
      ctx.signal.addEventListener("abort", waiter.onAbort, { once: true });
      this.#insert(waiter);
    });
  }

  /** Takes the first waiter out and lets it go; undefined when nobody waits. */
  grantNext(): Waiter | undefined {
    const waiter = this.#head;
    if (waiter === undefined) return undefined;
    this.#remove(waiter);
    waiter.resolve();
    return waiter;
  }

  /** After the last waiter with a priority at least as high: FIFO within a priority. */
  #insert(waiter: Waiter): void {
    let after = this.#tail;
    while (after !== undefined && after.priority < waiter.priority) after = after.prev;
    waiter.prev = after;
    waiter.next = after === undefined ? this.#head : after.next;
    if (waiter.prev === undefined) this.#head = waiter;
    else waiter.prev.next = waiter;
    if (waiter.next === undefined) this.#tail = waiter;
    else waiter.next.prev = waiter;
    this.#size++;
  }

  #remove(waiter: Waiter): void {
    if (waiter.prev === undefined) this.#head = waiter.next;
    else waiter.prev.next = waiter.next;
    if (waiter.next === undefined) this.#tail = waiter.prev;
    else waiter.next.prev = waiter.prev;
    waiter.prev = waiter.next = undefined;
    this.#size--;
    clearTimeout(waiter.timer);
    waiter.ctx.signal.removeEventListener("abort", waiter.onAbort);
  }
}
