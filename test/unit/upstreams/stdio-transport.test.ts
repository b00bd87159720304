/**
 * toolgate's stdio transport: newline framing over a real child's stdout (lines split across reads, CRLF,
 * several messages in one read), stderr lines, writes to a child that reads slower than the gateway sends,
 * a lone request written at once and requests sent together while others are in flight written together.
 */

import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it, vi } from "vitest";
import { StdioTransport } from "../../../src/upstreams/stdio-transport.ts";

/**
 * A child that reads nothing from stdin until SIGUSR2 (it says it is ready first), then answers each request
 * line with the length and the first 6 characters of its `params.text`.
 */
const SLOW_READER = `
  process.on("SIGUSR2", () => {
    let buffer = "";
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", (chunk) => {
      buffer += chunk;
      for (let nl = buffer.indexOf("\\n"); nl !== -1; nl = buffer.indexOf("\\n")) {
        const request = JSON.parse(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
        const text = request.params.text;
        const result = { length: text.length, head: text.slice(0, 6) };
        process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: request.id, result }) + "\\n");
      }
    });
  });
  setInterval(() => {}, 1000);
  process.stdout.write(JSON.stringify({ jsonrpc: "2.0", method: "ready" }) + "\\n");
`;
const TEXT_LENGTH = 100_000;
const COUNT = 40;

function bigRequest(id: number): JSONRPCMessage {
  const text = String(id).padStart(6, "0") + "x".repeat(TEXT_LENGTH - 6);
  return { jsonrpc: "2.0", id, method: "echo", params: { text } };
}

/** A started SLOW_READER, the answers it sends, and a promise of all COUNT of them. */
async function slowReader() {
  const transport = new StdioTransport({ command: process.execPath, args: ["-e", SLOW_READER], env: {} });
  const answers: Array<{ id: number; result: { length: number; head: string } }> = [];
  let ready: () => void = () => {};
  const isReady = new Promise<void>((resolve) => {
    ready = resolve;
  });
  let answeredAll: () => void = () => {};
  const allAnswered = new Promise<void>((resolve) => {
    answeredAll = resolve;
  });
  transport.onmessage = (message) => {
    if ("method" in message) return ready();
    if (answers.push(message as never) === COUNT) answeredAll();
  };
  await transport.start();
  await isReady;
  return { transport, answers, allAnswered };
}

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
    expect(errors.map((e) => e.message)).toEqual(["not a JSON-RPC message: not json"]);
    await transport.close();
    expect(closed).toBe(1);
    expect(stderr).toEqual(["starting", "second line"]);
    await expect(transport.send({ jsonrpc: "2.0", method: "x" })).rejects.toThrow("Not connected");
  });

  it("gives the lines of stdout that are not JSON-RPC to onNoise, not to onerror", async () => {
    const script = `
      process.stdout.write("Server started on stdio\\n" + JSON.stringify({ level: "info" }) + "\\n");
      process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: 1, result: {} }) + "\\n");
      process.stdin.resume();
    `;
    const noise: string[] = [];
    const transport = new StdioTransport({
      command: process.execPath,
      args: ["-e", script],
      env: {},
      onNoise: (line) => noise.push(line),
    });
    const errors: Error[] = [];
    transport.onerror = (err) => errors.push(err);
    const answered = new Promise((resolve) => {
      transport.onmessage = resolve;
    });
    await transport.start();
    expect(await answered).toEqual({ jsonrpc: "2.0", id: 1, result: {} });
    await transport.close();
    expect(noise).toEqual(["Server started on stdio", '{"level":"info"}']);
    expect(errors).toEqual([]);
  });

  it("holds what a full pipe cannot take, then writes every message whole and in order once the child reads", async () => {
    const { transport, answers, allAnswered } = await slowReader();
    let sent = 0;
    const sends = Array.from({ length: COUNT }, (_, i) =>
      transport.send(bigRequest(i + 1)).then(() => {
        sent++;
      }),
    );
    await new Promise((resolve) => setImmediate(resolve));
    // The child reads nothing yet: what its stdin's buffer (a socket pair's, about 200 KiB) takes is written,
    // the rest (4 MB in all) waits; nothing more can be written until the child reads.
    expect(sent).toBeGreaterThan(0);
    expect(sent).toBeLessThan(COUNT);
    process.kill(transport.pid as number, "SIGUSR2");
    await Promise.all(sends);
    expect(sent).toBe(COUNT);
    await allAnswered;
    expect(answers.map((a) => a.id)).toEqual(Array.from({ length: COUNT }, (_, i) => i + 1));
    for (const { id, result } of answers) {
      expect(result).toEqual({ length: TEXT_LENGTH, head: String(id).padStart(6, "0") });
    }
    await transport.close();
  }, 30_000);

  it("writes a request alone at once, and the requests sent in one turn while others are in flight together", async () => {
    // The child logs the number of lines of each read to a file (read synchronously below) and answers
    // every "echo" request; "hold" requests it leaves unanswered.
    const log = join(mkdtempSync(join(tmpdir(), "toolgate-stdio-")), "reads");
    const script = `
      const { appendFileSync } = require("node:fs");
      let buffer = "";
      process.stdin.setEncoding("utf8");
      process.stdin.on("data", (chunk) => {
        buffer += chunk;
        const lines = buffer.split("\\n");
        buffer = lines.pop();
        appendFileSync(${JSON.stringify(log)}, lines.length + "\\n");
        for (const line of lines) {
          const request = JSON.parse(line);
          if (request.method === "echo")
            process.stdout.write(JSON.stringify({ jsonrpc: "2.0", id: request.id, result: {} }) + "\\n");
        }
      });
      process.stdout.write(JSON.stringify({ jsonrpc: "2.0", method: "ready" }) + "\\n");
    `;
    const transport = new StdioTransport({ command: process.execPath, args: ["-e", script], env: {} });
    const answered = new Set<unknown>();
    let ready: () => void = () => {};
    const started = new Promise<void>((resolve) => (ready = resolve));
    transport.onmessage = (message) => {
      if ("method" in message) ready();
      else answered.add(message.id);
    };
    await transport.start();
    await started;
    const reads = () =>
      existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(0, -1).map(Number) : [];
    /** Blocks this thread (no turn of the event loop ends) until the child has read `count` times. */
    const readWithoutYielding = (count: number) => {
      const wait = new Int32Array(new SharedArrayBuffer(4));
      for (let i = 0; i < 2_000 && reads().length < count; i++) Atomics.wait(wait, 0, 0, 5);
      return reads();
    };

    // Nothing in flight: the request reaches the child before this turn ends.
    void transport.send({ jsonrpc: "2.0", id: 1, method: "hold" });
    expect(readWithoutYielding(1)).toEqual([1]);

    // Request 1 is unanswered: 16 requests sent in one turn reach the child in one write.
    const echoes = Array.from({ length: 16 }, (_, i) => i + 2);
    await Promise.all(echoes.map((id) => transport.send({ jsonrpc: "2.0", id, method: "echo" })));
    await vi.waitFor(() => expect(answered.size).toBe(16), { timeout: 10_000 });
    expect(reads()).toEqual([1, 16]);

    // Request 1 cancelled and the rest answered: a lone request leaves at once again.
    await transport.send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: 1 } });
    await vi.waitFor(() => expect(reads()).toEqual([1, 16, 1]), { timeout: 10_000 });
    void transport.send({ jsonrpc: "2.0", id: 18, method: "echo" });
    expect(readWithoutYielding(4)).toEqual([1, 16, 1, 1]);
    await transport.close();
  });

  it("drops an answer longer than its bound and fails only the request it answered, told by its last bytes", async () => {
    // Request 1 gets a 2 MiB answer with its id last (the SDK's order), request 2 a short one.
    const script = `
      require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
        const { id } = JSON.parse(line);
        const text = id === 1 ? "x".repeat(2 * 1024 * 1024) : "short";
        process.stdout.write(JSON.stringify({ result: { content: [{ type: "text", text }] }, jsonrpc: "2.0", id }) + "\\n");
      });
    `;
    const transport = new StdioTransport({
      command: process.execPath,
      args: ["-e", script],
      env: {},
      maxLineBytes: 1024 * 1024,
    });
    const malformed: Array<[string | number, string]> = [];
    const messages: JSONRPCMessage[] = [];
    transport.onmalformed = (id, problem) => malformed.push([id, problem]);
    transport.onmessage = (message) => messages.push(message);
    await transport.start();
    await transport.send({ jsonrpc: "2.0", id: 1, method: "tools/call", params: { name: "big" } });
    await vi.waitFor(() => expect(malformed).toHaveLength(1), { timeout: 10_000 });
    expect(malformed).toEqual([
      [1, "the upstream's answer is longer than 1048576 bytes; toolgate read no more of it"],
    ]);
    await transport.send({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name: "small" } });
    await vi.waitFor(() => expect(messages).toHaveLength(1), { timeout: 10_000 });
    expect(messages[0]).toMatchObject({ id: 2, result: { content: [{ text: "short" }] } });
    await transport.close();
  });

  it("rejects the messages still waiting for the pipe when it closes", async () => {
    const { transport } = await slowReader();
    const sends = Array.from({ length: COUNT }, (_, i) => transport.send(bigRequest(i + 1)));
    const outcomes = Promise.allSettled(sends);
    await transport.close();
    const settled = await outcomes;
    // Those written first were sent; every one after them was refused, none lost without an answer.
    const written = settled.findIndex((outcome) => outcome.status === "rejected");
    expect(written).toBeGreaterThan(0);
    for (const outcome of settled.slice(written)) {
      expect(outcome).toMatchObject({ status: "rejected", reason: { message: "Not connected" } });
    }
  }, 30_000);

  it("rejects start when the command cannot be spawned", async () => {
    const transport = new StdioTransport({ command: "/nonexistent/toolgate-test", args: [], env: {} });
    transport.onerror = () => {};
    await expect(transport.start()).rejects.toMatchObject({ code: "ENOENT" });
  });
});
