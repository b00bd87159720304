/**
 * How failures of the v2 client (2026-07-28 upstreams) map to the gateway's errors, and which of them break
 * the connection: only transport failures reconnect; an upstream's answer or a failed input round does not.
 */
import { ProtocolError, SdkError, SdkErrorCode, SdkHttpError } from "@modelcontextprotocol/client";
import { describe, expect, it } from "vitest";
import { ErrorCode } from "../../../src/errors.ts";
import { InputRoundFailed } from "../../../src/upstreams/client.ts";
import { requestFailure } from "../../../src/upstreams/request-error.ts";

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
