/**
 * How failures of the v2 client (2026-07-28 upstreams) map to the gateway's errors, and which of them break
 * the connection: only transport failures reconnect; an upstream's answer or a failed input round does not,
 * nor one HTTP exchange that broke after reaching the server.
 */
import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from "@modelcontextprotocol/client";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.ts";
import { InputRoundFailed } from "../../../src/upstreams/client.ts";
import { describeFailure, requestFailure } from "../../../src/upstreams/request-error.ts";

describe("requestFailure for 2026-era upstreams", () => {
  it.each([
    ["a JSON-RPC error", new ProtocolError(-32602, "bad params"), ErrorCode.UpstreamError, false],
    [
      "a local timeout",
      new SdkError(SdkErrorCode.RequestTimeout, "timed out"),
      ErrorCode.UpstreamTimeout,
      false,
    ],
    [
      "a closed connection",
      new SdkError(SdkErrorCode.ConnectionClosed, "closed"),
      ErrorCode.ConnectionLost,
      true,
    ],
    [
      "a send before connect",
      new SdkError(SdkErrorCode.NotConnected, "no"),
      ErrorCode.UpstreamUnavailable,
      true,
    ],
    [
      "a malformed result",
      new SdkError(SdkErrorCode.UnsupportedResultType, "task"),
      ErrorCode.UpstreamError,
      false,
    ],
    [
      "a forgotten session (HTTP 404)",
      new SdkHttpError(SdkErrorCode.ClientHttpNotImplemented, "gone", { status: 404 }),
      ErrorCode.UpstreamUnavailable,
      true,
    ],
    [
      "an input round the client could not answer",
      new InputRoundFailed("elicitation/create", new Error("Method not found")),
      ErrorCode.UpstreamError,
      false,
    ],
  ] as const)("maps %s", (_, err, code, broken) => {
    const failure = requestFailure(err, "up");
    expect(failure.error.code).toBe(code);
    expect(failure.error.upstream).toBe("up");
    expect(failure.connectionBroken).toBe(broken);
  });

  it("names the round that failed and why", () => {
    const failure = requestFailure(
      new InputRoundFailed("sampling/createMessage", new Error("no model")),
      "up",
    );
    expect(failure.error.message).toBe(
      'upstream "up": sampling/createMessage (an input-required round) could not be answered: no model',
    );
  });
});

describe("requestFailure for a failed HTTP exchange", () => {
  const fetchFailed = (code: string) =>
    new TypeError("fetch failed", { cause: Object.assign(new Error(`read ${code}`), { code }) });

  it("keeps the connection when the exchange reached the server and broke: only that request failed", () => {
    const failure = requestFailure(fetchFailed("ECONNRESET"), "up");
    expect(failure.error.code).toBe(ErrorCode.ConnectionLost);
    expect(failure.error.message).toContain("the server closed the connection");
    expect(failure.connectionBroken).toBe(false);
  });

  it("marks the connection broken when the server refused it", () => {
    const failure = requestFailure(fetchFailed("ECONNREFUSED"), "up");
    expect(failure.error.code).toBe(ErrorCode.UpstreamUnavailable);
    expect(failure.connectionBroken).toBe(true);
  });

  it("marks it broken for a failure that is no HTTP exchange's (a closed pipe)", () => {
    const failure = requestFailure(Object.assign(new Error("write EPIPE"), { code: "EPIPE" }), "up");
    expect(failure.error.code).toBe(ErrorCode.ConnectionLost);
    expect(failure.connectionBroken).toBe(true);
  });
});

describe("describeFailure", () => {
  it("names what failed a fetch when no socket error explains it", () => {
    const bound = new TypeError("fetch failed", {
      cause: new Error("the answer's body is larger than 67108864 bytes; toolgate read no more of it"),
    });
    expect(describeFailure(bound)).toBe(
      "fetch failed: the answer's body is larger than 67108864 bytes; toolgate read no more of it",
    );
    const refused = new TypeError("fetch failed", {
      cause: Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), {
        code: "ECONNREFUSED",
        syscall: "connect",
      }),
    });
    expect(describeFailure(refused)).toContain("fetch failed (ECONNREFUSED)");
  });
});
