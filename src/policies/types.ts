/**
 * The one shape of a policy (cockatiel-like): `execute(fn, ctx)`. Policies never mutate a context; they
 * derive a child (`{ ...ctx, signal }`) and pass it inward.
 */
import type { PolicyEvents } from "./events.ts";

export interface CallContext {
  /** Aborted when the client cancels or disconnects, or a deadline passes; its reason says which. */
  signal: AbortSignal;
  /** Absolute, in performance.now() ms: the overall call deadline (Infinity: none). */
  deadline: number;
  /** Upstream name. */
  upstream: string;
  /** Public tool name. */
  tool: string;
  args: Record<string, unknown>;
  /** Higher runs first when queued. */
  priority: number;
  /** Safe to run twice (from annotations or config), decided by the router. */
  idempotent: boolean;
  /** 1-based, set by retry. */
  attempt: number;
  /** Called by the terminal upstream call on each progress notification (resets the attempt timeout). */
  onActivity?: () => void;
  /** The cluster lease the call holds (lock policy with a cluster): sent upstream as `_meta["toolgate/fencing"]`. */
  fencing?: { lock: string; token: number };
  /** Typed event sink; telemetry subscribes. */
  events: PolicyEvents;
}

export type PolicyFn<T> = (ctx: CallContext) => Promise<T>;

export interface Policy {
  readonly name: string;
  execute<T>(fn: PolicyFn<T>, ctx: CallContext): Promise<T>;
}
