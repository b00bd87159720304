/**
 * Time limits. `timeoutPolicy` bounds one attempt (an idle timeout when `resetOnProgress`: each progress
 * notification restarts it); `deadlinePolicy` bounds the whole call (ctx.deadline), retries, queues,
 * locks and fallbacks included. On expiry each aborts the signal it passes inward (the terminal call
 * hands that signal to the SDK, which sends `notifications/cancelled` upstream) and rejects at once,
 * without waiting for the upstream: the slot and lock held outside are released right away.
 * Both also reject at once when ctx.signal aborts, so a call that ignores its signal holds nothing.
 */
import { ErrorCode, GatewayError } from "../errors.ts";
import { abortError } from "./abort.ts";
import { type Alarm, Alarms } from "./alarms.ts";
import type { TimeoutLimit } from "./events.ts";
import type { CallContext, Policy, PolicyFn } from "./types.ts";

export interface TimeoutOptions {
  /** Limit of one attempt; 0: none. */
  attemptMs: number;
  /** The call deadline, only named in errors (ctx.deadline is the absolute one); 0: none. */
  callMs: number;
  /** A progress notification (ctx.onActivity) restarts the attempt timer. */
  resetOnProgress: boolean;
}

export function timeoutPolicy(options: TimeoutOptions): Policy {
  const { attemptMs, resetOnProgress } = options;
  const delay = attemptMs > 0 ? attemptMs : Number.POSITIVE_INFINITY;
  const alarms = new Alarms();
  return {
    name: "timeout",
    execute: (fn, ctx) => runWithin(fn, ctx, alarms, delay, "attempt", attemptMs, resetOnProgress),
  };
}

export function deadlinePolicy(options: Pick<TimeoutOptions, "callMs">): Policy {
  const alarms = new Alarms();
  return {
    name: "deadline",
    execute(fn, ctx) {
      if (ctx.deadline === Number.POSITIVE_INFINITY) return fn(ctx);
      return runWithin(fn, ctx, alarms, ctx.deadline - performance.now(), "call", options.callMs, false);
    },
  };
}

const LIMIT_TEXT: Record<TimeoutLimit, string> = {
  attempt: "attempt timeout",
  call: "call deadline",
};

const LIMIT_OPTION: Record<TimeoutLimit, string> = {
  attempt: "timeout.attemptMs",
  call: "timeout.callMs",
};

function runWithin<T>(
  fn: PolicyFn<T>,
  ctx: CallContext,
  alarms: Alarms,
  delayMs: number,
  limit: TimeoutLimit,
  limitMs: number,
  resettable: boolean,
): Promise<T> {
  if (ctx.signal.aborted) return Promise.reject(abortError(ctx, "timeout", "before the attempt started"));
  if (delayMs <= 0) return Promise.reject(timedOut(ctx, limit, limitMs));
  const controller = new AbortController();
  return new Promise<T>((resolve, reject) => {
    let alarm: Alarm | undefined;
    const settle = () => {
      if (alarm) alarms.cancel(alarm);
      ctx.signal.removeEventListener("abort", onAbort);
    };
    const onAbort = () => {
      settle();
      const err = abortError(ctx, "timeout", "while it ran");
      controller.abort(err);
      reject(err);
    };
    // Removed on settle, so no `once` (an options object to read on every call).
    ctx.signal.addEventListener("abort", onAbort);
    if (Number.isFinite(delayMs)) {
      alarm = alarms.set(delayMs, () => {
        settle();
        const err = timedOut(ctx, limit, limitMs);
        controller.abort(err);
        reject(err);
      });
    }
    // onActivity is made with the object: stored into it afterwards, the closure kept about 850 bytes of every
    // call alive into the old generation (V8, measured with --trace-gc-nvp; see README, Performance).
    const a = alarm;
    const child: CallContext =
      resettable && a !== undefined
        ? { ...ctx, signal: controller.signal, onActivity: () => alarms.restart(a, delayMs) }
        : { ...ctx, signal: controller.signal };
    try {
      fn(child).then(
        (value) => {
          settle();
          resolve(value);
        },
        (err: unknown) => {
          settle();
          reject(err);
        },
      );
    } catch (err) {
      settle();
      reject(err);
    }
  });
}

function timedOut(ctx: CallContext, limit: TimeoutLimit, limitMs: number): GatewayError {
  ctx.events.emit({
    type: "timeout",
    upstream: ctx.upstream,
    tool: ctx.tool,
    attempt: ctx.attempt,
    limit,
    ms: limitMs,
  });
  const what = `${LIMIT_TEXT[limit]} ${limitMs} ms`;
  return new GatewayError(
    ErrorCode.UpstreamTimeout,
    `no answer within the ${what} (${LIMIT_OPTION[limit]}); the call was cancelled, upstream too if its request was sent`,
    {
      upstream: ctx.upstream,
      tool: ctx.tool,
      policy: limit === "attempt" ? "timeout" : "deadline",
      // The upstream may have started the work: a retry could run it twice.
      reachedUpstream: true,
      data: { limit, ms: limitMs },
    },
  );
}
