/** The JSON-RPC envelope every upstream transport checks each message against, in place of the SDK's zod. */
import { describe, expect, it } from "vitest";
import { isJsonRpcMessage } from "../../../src/upstreams/message-shape.ts";

describe("isJsonRpcMessage", () => {
  it.each([
    [{ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "x" } }, true],
    [{ jsonrpc: "2.0", id: "a", method: "ping" }, true],
    [{ jsonrpc: "2.0", method: "notifications/progress", params: { progressToken: 1, progress: 1 } }, true],
    [{ jsonrpc: "2.0", id: 1, result: {} }, true],
    [{ jsonrpc: "2.0", id: 1, error: { code: -32600, message: "bad", data: 1 } }, true],
    [{ jsonrpc: "1.0", id: 1, result: {} }, false],
    [{ jsonrpc: "2.0", id: null, result: {} }, false],
    [{ jsonrpc: "2.0", id: 1, result: "text" }, false],
    [{ jsonrpc: "2.0", id: 1, result: [] }, false],
    [{ jsonrpc: "2.0", id: 1, result: {}, error: { code: 1, message: "m" } }, false],
    [{ jsonrpc: "2.0", id: 1, error: { message: "no code" } }, false],
    [{ jsonrpc: "2.0", method: "x", params: [1, 2] }, false],
    [{ jsonrpc: "2.0", result: {} }, false],
    [{ jsonrpc: "2.0", id: null, method: "ping" }, false],
    [{ jsonrpc: "2.0", id: null, error: { code: -32700, message: "Parse error" } }, true],
    [{ jsonrpc: "2.0", error: { code: -32700, message: "Parse error" } }, true],
    [{ jsonrpc: "2.0", id: 1, error: { code: "E1", message: "m" } }, false],
    [{ jsonrpc: "2.0", id: 1, error: "bad" }, false],
    [{ jsonrpc: "2.0", id: 1, result: 42 }, false],
    [{ jsonrpc: "2.0", id: {}, result: {} }, false],
    [[{ jsonrpc: "2.0", id: 1, result: {} }], false],
    ["text", false],
    [null, false],
  ])("%j -> %s", (value, expected) => {
    expect(isJsonRpcMessage(value)).toBe(expected);
  });
});
