/**
 * What an error carries, and which code one situation gets: RetriesExhausted lists its attempts (in the
 * JSON-RPC `data` and in an isError result's `_meta`), errors name their tool and policy, a retried call
 * under a deadline gets the same code whatever the jitter, and an upstream's own JSON-RPC error passes
 * through with its code and message.
 */
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  ErrorCode,
  GatewayError,
  isProtocolError,
  toGatewayError,
  toToolErrorResult,
  toWire,
  withContext,
} from "../../../src/errors.ts";
import { compose } from "../../../src/policies/pipeline.ts";
import { retryPolicy } from "../../../src/policies/retry.ts";
import { deadlinePolicy, timeoutPolicy } from "../../../src/policies/timeout.ts";
import type { CallContext } from "../../../src/policies/types.ts";
import { context, settle } from "./helpers.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

const refused = () => new GatewayError(ErrorCode.UpstreamUnavailable, "connect ECONNREFUSED 127.0.0.1:9");

/** Never answers; rejects with the signal's reason when the attempt is cancelled. */
const hang = (ctx: CallContext) =>
  new Promise<never>((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));

describe("RetriesExhausted", () => {
  it("lists every attempt in data and in the isError result's _meta", async () => {
    const policy = retryPolicy({ maxAttempts: 3, baseDelayMs: 10, maxDelayMs: 10, retryToolErrors: false });
    const outcome = settle(policy.execute(() => Promise.reject(refused()), context()));
    await vi.runAllTimersAsync();
    const error = outcome.error as GatewayError;
    expect(error.code).toBe(ErrorCode.RetriesExhausted);
    const attempts = [1, 2, 3].map((attempt) => ({ attempt, code: "UpstreamUnavailable" }));
    expect(toWire(error).data).toMatchObject({ attempts, toolgate: { code: "RetriesExhausted" } });
    expect(toToolErrorResult(error)._meta["toolgate/error"]).toMatchObject({
      code: "RetriesExhausted",
      policy: "retry",
      attempts,
    });
  });
});

describe("one situation, one code", () => {
  // Attempts time out after 100 ms, the call after 350 ms: depending on the jitter the third attempt is
  // cut by the attempt timeout (attempts used up) or by the call deadline. Both are the same situation.
  it.each([0, 0.5, 0.999])("reports a hanging tool as UpstreamTimeout (jitter %f)", async (jitter) => {
    const pipeline = compose(
      deadlinePolicy({ callMs: 350 }),
      retryPolicy(
        { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 100, retryToolErrors: false },
        () => jitter,
      ),
      timeoutPolicy({ attemptMs: 100, callMs: 350, resetOnProgress: false }),
    );
    const ctx = context({ idempotent: true, deadline: performance.now() + 350 });
    const outcome = settle(pipeline.execute(hang, ctx));
    await vi.runAllTimersAsync();
    expect(outcome.error).toMatchObject({ code: ErrorCode.UpstreamTimeout });
  });

  it.each([0, 0.999])(
    "reports failures retries could not fix as RetriesExhausted (jitter %f)",
    async (jitter) => {
      // Each attempt fails after 10 ms; the deadline (100 ms) leaves room for every retry without jitter,
      // and for none after the first failure with the most.
      const fail = () => new Promise<never>((_, reject) => setTimeout(() => reject(refused()), 10));
      const pipeline = compose(
        deadlinePolicy({ callMs: 100 }),
        retryPolicy(
          { maxAttempts: 3, baseDelayMs: 100, maxDelayMs: 100, retryToolErrors: false },
          () => jitter,
        ),
      );
      const outcome = settle(pipeline.execute(fail, context({ deadline: performance.now() + 100 })));
      await vi.runAllTimersAsync();
      expect(outcome.error).toMatchObject({ code: ErrorCode.RetriesExhausted });
      expect((outcome.error as GatewayError).data?.attempts).toContainEqual(
        expect.objectContaining({ attempt: 1, code: "UpstreamUnavailable" }),
      );
    },
  );
});

describe("an upstream's own JSON-RPC error", () => {
  const upstreamError = () =>
    withContext(
      toGatewayError(new McpError(-32603, "the database is down", { retryAfter: 5 }), {
        upstream: "db",
        reachedUpstream: true,
      }),
      { tool: "db__query", policy: "upstream" },
    );

  it("passes through as a JSON-RPC error with its code, message and data, naming upstream, tool and policy", () => {
    const error = upstreamError();
    expect(isProtocolError(error)).toBe(true);
    expect(toWire(error)).toEqual({
      code: -32603,
      message: "the database is down",
      data: {
        retryAfter: 5,
        toolgate: {
          code: "UpstreamError",
          class: "transient",
          upstream: "db",
          tool: "db__query",
          policy: "upstream",
        },
      },
    });
  });

  it("is a JSON-RPC error for caller errors too, keeping -32602", () => {
    const error = toGatewayError(new McpError(-32602, "city is required"), { upstream: "weather" });
    expect(isProtocolError(error)).toBe(true);
    expect(toWire(error)).toMatchObject({ code: -32602, message: "city is required" });
    expect(error.errorClass).toBe("client");
  });
});
