/**
 * Retries transient failures with exponential backoff and full jitter
 * (delay = random(0, min(maxDelayMs, baseDelayMs * 2^(attempt-1)))), within the call deadline.
 * Safety first: a failure that may have reached the upstream is retried only for an idempotent call,
 * and so is a result with `isError: true` (only with retryToolErrors). Every attempt emits
 * attemptStart/attemptEnd, so telemetry gets one span per attempt.
 */
import { classify, describe, ErrorCode, GatewayError, toGatewayError, withContext } from "../errors.ts";
import { abortError } from "./abort.ts";
import type { CallContext, Policy, PolicyFn } from "./types.ts";

export interface RetryOptions {
  /** Attempts in all, the first included; 1: no retry. */
  maxAttempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Also retry results with `isError: true` (idempotent calls only). */
  retryToolErrors: boolean;
}

interface FailedAttempt {
  attempt: number;
  code: ErrorCode | "toolError";
  message: string;
}

/** `random` returns [0, 1); injected so tests can pin the jitter. */
export function retryPolicy(options: RetryOptions, random: () => number = Math.random): Policy {
  const { maxAttempts, baseDelayMs, maxDelayMs, retryToolErrors } = options;

  /**
   * The backoff before the attempt after `attempt`, or what leaves no room for one. An upstream's
   * `Retry-After` (`data.retryAfterMs`, e.g. from an HTTP 429) is the least delay; one over maxDelayMs ends
   * the retries (see the caller), so the caller sees the upstream's answer rather than a long wait.
   */
  const nextDelay = (
    attempt: number,
    ctx: CallContext,
    retryAfterMs = 0,
  ): number | "attempts" | "deadline" => {
    if (attempt >= maxAttempts) return "attempts";
    const jitter = random() * Math.min(maxDelayMs, baseDelayMs * 2 ** (attempt - 1));
    const delay = Math.max(jitter, retryAfterMs);
    return performance.now() + delay < ctx.deadline ? delay : "deadline";
  };

  const run = async <T>(fn: PolicyFn<T>, ctx: CallContext): Promise<T> => {
    const failures: FailedAttempt[] = [];
    for (let attempt = 1; ; attempt++) {
      const current = ctx.attempt === attempt ? ctx : { ...ctx, attempt };
      emitStart(current);
      const started = performance.now();
      let result: T;
      try {
        result = await fn(current);
      } catch (err) {
        const error = toGatewayError(err, { upstream: ctx.upstream, tool: ctx.tool });
        emitEnd(current, started, "error", error);
        // An open breaker stays open far longer than a backoff: fail fast and let a fallback serve.
        const retriable =
          !ctx.signal.aborted &&
          classify(error) === "transient" &&
          error.code !== ErrorCode.CircuitOpen &&
          (!error.reachedUpstream || ctx.idempotent);
        failures.push({ attempt, code: error.code, message: error.message });
        // Whatever ends a retried call lists every attempt in `data.attempts`.
        // An upstream asking to wait longer than maxDelayMs (Retry-After) gets its own answer passed on.
        const retryAfterMs = retryAfterOf(error) ?? 0;
        if (!retriable || retryAfterMs > maxDelayMs) throw withAttempts(error, failures);
        const delay = nextDelay(attempt, ctx, retryAfterMs);
        if (typeof delay !== "number") throw giveUp(ctx, failures, error, delay, maxAttempts);
        try {
          await backoff(current, delay, error.code);
        } catch (err) {
          throw withAttempts(toGatewayError(err), failures);
        }
        continue;
      }
      if (!isToolError(result)) {
        emitEnd(current, started, "success");
        return result;
      }
      emitEnd(current, started, "toolError");
      const delay = retryToolErrors && ctx.idempotent ? nextDelay(attempt, ctx) : undefined;
      // A tool error is an answer for the model: when it is not retried, it is passed through.
      if (typeof delay !== "number") return result;
      failures.push({ attempt, code: "toolError", message: "the tool returned isError: true" });
      try {
        await backoff(current, delay, "toolError");
      } catch (err) {
        throw withAttempts(toGatewayError(err), failures);
      }
    }
  };

  return { name: "retry", execute: run };
}

function retryAfterOf(error: GatewayError): number | undefined {
  const ms = error.data?.retryAfterMs;
  return typeof ms === "number" && ms >= 0 ? ms : undefined;
}

function isToolError(result: unknown): boolean {
  return typeof result === "object" && result !== null && (result as { isError?: unknown }).isError === true;
}

function exhausted(
  ctx: CallContext,
  failures: FailedAttempt[],
  last: GatewayError,
  why: string,
): GatewayError {
  const n = failures.length;
  return new GatewayError(
    ErrorCode.RetriesExhausted,
    `${n} ${n === 1 ? "attempt" : "attempts"} failed${why}, the last with ${describe(last)}`,
    {
      upstream: ctx.upstream,
      tool: ctx.tool,
      policy: "retry",
      reachedUpstream: last.reachedUpstream,
      cause: last,
      data: { attempts: failures },
    },
  );
}

/**
 * The error of a call whose transient failures retries did not fix. One rule, whatever limit ended the
 * retries (attempts, or a call deadline too close for another one), so one situation always gets one code:
 * a timeout stays UpstreamTimeout (as when the deadline cuts an attempt short), anything else is
 * RetriesExhausted; with maxAttempts 1 the attempt's own error. Every attempt is listed in `data`.
 */
function giveUp(
  ctx: CallContext,
  failures: FailedAttempt[],
  last: GatewayError,
  limit: "attempts" | "deadline",
  maxAttempts: number,
): GatewayError {
  if (maxAttempts === 1) return last;
  if (last.code === ErrorCode.UpstreamTimeout) return withContext(last, { data: { attempts: failures } });
  const why = limit === "deadline" ? "; the call deadline (timeout.callMs) leaves no time for another" : "";
  return exhausted(ctx, failures, last, why);
}

/** After more than one attempt, the error that ends the call carries them all. */
function withAttempts(error: GatewayError, failures: FailedAttempt[]): GatewayError {
  return failures.length > 1 ? withContext(error, { data: { attempts: failures } }) : error;
}

/** Sleeps before the next attempt; the call's cancellation or deadline ends the sleep with its error. */
function backoff(ctx: CallContext, delayMs: number, errorCode: ErrorCode | "toolError"): Promise<void> {
  ctx.events.emit({
    type: "retryScheduled",
    upstream: ctx.upstream,
    tool: ctx.tool,
    attempt: ctx.attempt,
    delayMs,
    errorCode,
  });
  if (ctx.signal.aborted) return Promise.reject(abortError(ctx, "retry", "before a retry"));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(ctx, "retry", "while waiting to retry"));
    };
    const timer = setTimeout(() => {
      ctx.signal.removeEventListener("abort", onAbort);
      resolve();
    }, delayMs);
    ctx.signal.addEventListener("abort", onAbort, { once: true });
  });
}

function emitStart(ctx: CallContext): void {
  ctx.events.emit({ type: "attemptStart", upstream: ctx.upstream, tool: ctx.tool, attempt: ctx.attempt });
}

function emitEnd(
  ctx: CallContext,
  started: number,
  outcome: "success" | "toolError" | "error",
  error?: GatewayError,
): void {
  ctx.events.emit({
    type: "attemptEnd",
    upstream: ctx.upstream,
    tool: ctx.tool,
    attempt: ctx.attempt,
    durationMs: performance.now() - started,
    outcome,
    ...(error === undefined ? {} : { errorCode: error.code, errorClass: error.errorClass }),
  });
}
