/**
 * toolgate's stdio transport: newline framing over a real child's stdout (lines split across reads, CRLF,
 * several messages in one read), the JSON-RPC envelope check that replaced zod, and stderr lines.
 */
import { describe, expect, it } from "vitest";
import { isJsonRpcMessage, StdioTransport } from "../../../src/upstreams/stdio-transport.ts";

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
    [[{ jsonrpc: "2.0", id: 1, result: {} }], false],
    ["text", false],
    [null, false],
  ])("%j -> %s", (value, expected) => {
    expect(isJsonRpcMessage(value)).toBe(expected);
  });
});

describe("StdioTransport", () => {
  it("frames lines across reads, in order, and reports stderr lines and what is not JSON-RPC", async () => {
    // The child writes half a message, then the rest with a CRLF and two more messages in one write.
    const script = `
      const m = (id) => JSON.stringify({ jsonrpc: "2.0", id, result: { n: id } });
      const first = m(1);
      process.stderr.write("starting\\nsecond line\\n");
      process.stdout.write(first.slice(0, 10));
      setTimeout(() => {
        process.stdout.write(first.slice(10) + "\\r\\nnot json\\n" + m(2) + "\\n" + m(3) + "\\n");
        process.stdin.resume();
      }, 50);
    `;
    const stderr: string[] = [];
    const transport = new StdioTransport({
      command: process.execPath,
      args: ["-e", script],
      env: {},
      onStderr: (line) => stderr.push(line),
    });
    const messages: unknown[] = [];
    const errors: Error[] = [];
    const three = new Promise<void>((resolve) => {
      transport.onmessage = (message) => {
        messages.push(message);
        if (messages.length === 3) resolve();
      };
    });
    transport.onerror = (err) => errors.push(err);
    let closed = 0;
    transport.onclose = () => closed++;
    await transport.start();
    expect(transport.pid).toBeGreaterThan(0);
    await three;
    expect(messages).toEqual([1, 2, 3].map((n) => ({ jsonrpc: "2.0", id: n, result: { n } })));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(SyntaxError);
    await transport.close();
    expect(closed).toBe(1);
    expect(stderr).toEqual(["starting", "second line"]);
    await expect(transport.send({ jsonrpc: "2.0", method: "x" })).rejects.toThrow("Not connected");
  });

  it("rejects start when the command cannot be spawned", async () => {
    const transport = new StdioTransport({ command: "/nonexistent/toolgate-test", args: [], env: {} });
    transport.onerror = () => {};
    await expect(transport.start()).rejects.toMatchObject({ code: "ENOENT" });
  });
});
