/**
 * Everything the policies report, as one discriminated union. Telemetry turns these into spans (queue
 * wait, lock wait, one per attempt) and metrics; policies never import exporters.
 *
 * Per-call events come through `ctx.events`, so the router may hand each call its own sink (bound to
 * the call's span); they carry upstream, tool and attempt so a shared sink can label metrics too.
 * Breaker state changes are not tied to a call: they go to the sink given to `BreakerRegistry`.
 * Times are in ms; `waitMs`/`heldMs`/`durationMs` are measured with performance.now(),
 * `nextAttemptAt` is wall-clock epoch ms (it is shown to people).
 */
import type { ErrorClass, ErrorCode } from "../errors.ts";

interface CallEventBase {
  upstream: string;
  tool: string;
  /** 1-based attempt the event belongs to. */
  attempt: number;
}

export type BreakerState = "closed" | "open" | "halfOpen";

export type TimeoutLimit = "attempt" | "call";

export type PolicyEvent =
  /** The call waits for a slot of `bulkhead` (emitted only when it has to wait). */
  | (CallEventBase & { type: "queued"; bulkhead: string; priority: number; queued: number })
  /** The call left the queue with a slot. */
  | (CallEventBase & { type: "dequeued"; bulkhead: string; waitMs: number })
  /** The call got no slot: full queue (waitMs 0), queue timeout, or cancelled while queued. */
  | (CallEventBase & {
      type: "rejected";
      bulkhead: string;
      code: "QueueFull" | "QueueTimeout" | "Cancelled";
      waitMs: number;
    })
  /** The lock is held by another call: this one waits (emitted only when it has to wait). */
  | (CallEventBase & { type: "lockWait"; lock: string; waiting: number })
  /** The lock is this call's (waitMs 0 when it was free). */
  | (CallEventBase & { type: "lockAcquired"; lock: string; waitMs: number })
  /** The call gave up waiting for the lock. */
  | (CallEventBase & {
      type: "lockRejected";
      lock: string;
      code: "LockTimeout" | "Cancelled";
      waitMs: number;
    })
  | (CallEventBase & { type: "lockReleased"; lock: string; heldMs: number })
  /** One pass through the policies inside retry (breaker, bulkhead, lock, timeout, upstream call). */
  | (CallEventBase & { type: "attemptStart" })
  | (CallEventBase & {
      type: "attemptEnd";
      durationMs: number;
      /** `toolError`: a result with `isError: true`. */
      outcome: "success" | "toolError" | "error";
      errorCode?: ErrorCode;
      errorClass?: ErrorClass;
    })
  /** `attempt` failed and the next one starts after `delayMs`. */
  | (CallEventBase & { type: "retryScheduled"; delayMs: number; errorCode: ErrorCode | "toolError" })
  | (CallEventBase & { type: "timeout"; limit: TimeoutLimit; ms: number })
  | (CallEventBase & {
      type: "breakerRejected";
      breaker: string;
      state: BreakerState;
      nextAttemptAt?: number;
    })
  /** The call moves from route `from` to route `to` (public tool names) because of `reason`. */
  | (CallEventBase & { type: "fallback"; from: string; to: string; reason: ErrorCode })
  | {
      type: "breakerStateChange";
      breaker: string;
      from: BreakerState;
      to: BreakerState;
      nextAttemptAt?: number;
    };

export type PolicyEventType = PolicyEvent["type"];

export interface PolicyEvents {
  emit(event: PolicyEvent): void;
}

/** A sink that drops everything (tests, or telemetry off). */
export const noEvents: PolicyEvents = { emit() {} };

/** Fan-out to any number of listeners; a throwing listener never breaks a call. */
export class PolicyEventHub implements PolicyEvents {
  #listeners: Array<(event: PolicyEvent) => void> = [];

  /** Returns the function that unsubscribes. */
  on(listener: (event: PolicyEvent) => void): () => void {
    this.#listeners = [...this.#listeners, listener];
    return () => {
      this.#listeners = this.#listeners.filter((l) => l !== listener);
    };
  }

  emit(event: PolicyEvent): void {
    for (const listener of this.#listeners) {
      try {
        listener(event);
      } catch {
        // Telemetry must never change the outcome of a call.
      }
    }
  }
}
