import { describe, expect, it, vi } from "vitest";
import type { FallbackTrigger } from "../../../src/config/policy.ts";
import type { FallbackRoute } from "../../../src/config/schema.ts";
import { ErrorCode, GatewayError } from "../../../src/errors.ts";
import { type CallRoute, fallbackPolicy } from "../../../src/policies/fallback.ts";
import { context, recorder } from "./helpers.ts";

const on: FallbackTrigger[] = ["unavailable", "circuitOpen", "timeout", "retriesExhausted"];
const unavailable = (what: string) => new GatewayError(ErrorCode.UpstreamUnavailable, `${what} is down`);
const primaryDown = async (): Promise<never> => {
  throw unavailable("primary");
};

describe("fallbackPolicy", () => {
  it("serves from the alternate route and tags the result with the route and the attempts", async () => {
    const routes: FallbackRoute[] = [{ tool: "alt__search" }];
    const callRoute = vi.fn<CallRoute>(async () => ({
      content: [{ type: "text", text: "from alt" }],
      _meta: { x: 1 },
    }));
    const events = recorder();
    const result = await fallbackPolicy(routes, on, callRoute).execute(
      primaryDown,
      context({ tool: "main__search", args: { q: "cats" }, events }),
    );
    expect(callRoute).toHaveBeenCalledWith(
      routes[0],
      { q: "cats" },
      expect.objectContaining({ tool: "main__search" }),
    );
    expect(result).toEqual({
      content: [{ type: "text", text: "from alt" }],
      _meta: {
        x: 1,
        "toolgate/route": "alt__search",
        "toolgate/attempts": [
          {
            tool: "main__search",
            code: ErrorCode.UpstreamUnavailable,
            message: expect.stringContaining("primary is down"),
          },
          { tool: "alt__search" },
        ],
      },
    });
    expect(events.of("fallback")).toEqual([
      expect.objectContaining({
        from: "main__search",
        to: "alt__search",
        reason: ErrorCode.UpstreamUnavailable,
      }),
    ]);
  });

  it("maps arguments for the alternate route by dotted path and JSON pointer", async () => {
    const routes: FallbackRoute[] = [
      { tool: "alt__search", args: { query: "q.text", limit: "/opts/max", none: "missing" } },
    ];
    const callRoute = vi.fn<CallRoute>(async () => ({ content: [] }));
    await fallbackPolicy(routes, on, callRoute).execute(
      primaryDown,
      context({ args: { q: { text: "cats" }, opts: { max: 3 } } }),
    );
    expect(callRoute.mock.calls[0]?.[1]).toEqual({ query: "cats", limit: 3 });
  });

  it("tags a result served by the primary route", async () => {
    const callRoute = vi.fn<CallRoute>();
    const result = await fallbackPolicy([{ tool: "alt" }], on, callRoute).execute(
      async () => ({ content: [] }),
      context({ tool: "main" }),
    );
    expect(result).toEqual({
      content: [],
      _meta: { "toolgate/route": "main", "toolgate/attempts": [{ tool: "main" }] },
    });
    expect(callRoute).not.toHaveBeenCalled();
  });

  it("tries every route in order and lists every error when all fail", async () => {
    const tried: string[] = [];
    const callRoute: CallRoute = async (route) => {
      tried.push(route.tool);
      throw unavailable(route.tool);
    };
    const error = (await fallbackPolicy([{ tool: "b" }, { tool: "c" }], on, callRoute)
      .execute(primaryDown, context({ tool: "a" }))
      .catch((e: unknown) => e)) as GatewayError;
    expect(tried).toEqual(["b", "c"]);
    expect(error.code).toBe(ErrorCode.FallbackExhausted);
    expect(error.message).toContain("3 tried");
    for (const text of ["a: ", "primary is down", "b: ", "b is down", "c: ", "c is down"]) {
      expect(error.message).toContain(text);
    }
    expect(error.data?.attempts).toEqual([
      expect.objectContaining({ tool: "a" }),
      expect.objectContaining({ tool: "b" }),
      expect.objectContaining({ tool: "c" }),
    ]);
  });

  it("never falls back on a client error", async () => {
    const invalid = new GatewayError(ErrorCode.InvalidArguments, "city is required");
    const callRoute = vi.fn<CallRoute>();
    const policy = fallbackPolicy([{ tool: "alt" }], [...on, "upstreamError", "overload"], callRoute);
    await expect(policy.execute(() => Promise.reject(invalid), context())).rejects.toBe(invalid);
    expect(callRoute).not.toHaveBeenCalled();
  });

  it("falls back only on the configured triggers", async () => {
    const callRoute = vi.fn<CallRoute>(async () => ({ content: [] }));
    const timeoutsOnly = fallbackPolicy([{ tool: "alt" }], ["timeout"], callRoute);
    await expect(timeoutsOnly.execute(primaryDown, context())).rejects.toMatchObject({
      code: ErrorCode.UpstreamUnavailable,
    });
    expect(callRoute).not.toHaveBeenCalled();
    const retriedTimeouts = new GatewayError(ErrorCode.RetriesExhausted, "3 attempts failed", {
      cause: new GatewayError(ErrorCode.UpstreamTimeout, "slow"),
    });
    await timeoutsOnly.execute(() => Promise.reject(retriedTimeouts), context());
    expect(callRoute).toHaveBeenCalledTimes(1);
  });

  it("does not fall back once the call is cancelled", async () => {
    const controller = new AbortController();
    controller.abort();
    const callRoute = vi.fn<CallRoute>();
    await expect(
      fallbackPolicy([{ tool: "alt" }], on, callRoute).execute(
        primaryDown,
        context({ signal: controller.signal }),
      ),
    ).rejects.toMatchObject({ code: ErrorCode.UpstreamUnavailable });
    expect(callRoute).not.toHaveBeenCalled();
  });
});
