/**
 * The 2025-11-25 connection (legacy-client.ts on jsonrpc-connection.ts) over toolgate's stdio transport,
 * against the fault server in a real child process: the handshake, progress, timeouts and cancellation as
 * the upstream sees them, the upstream's own requests, a line that is not JSON-RPC, and a crash.
 */
import { McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorCode, GatewayError } from "../../src/errors.ts";
import type { ClientEvents, ServerMessage, UpstreamClient } from "../../src/upstreams/client.ts";
import { connectLegacy } from "../../src/upstreams/legacy-client.ts";
import { requestFailure, UnsendableMessageError } from "../../src/upstreams/request-error.ts";
import { createSdkTransport } from "../../src/upstreams/transports.ts";
import { eventually, FAULT_SERVER, NODE, textOf } from "../helpers/gateway.ts";

const TIMEOUT = 30_000;

interface Seen {
  requests: ServerMessage[];
  notifications: ServerMessage[];
  listChanges: string[];
  closed: number;
  stderr: string[];
}

let client: UpstreamClient | undefined;

afterEach(async () => {
  await client?.close();
  client = undefined;
});

async function connect(
  answer: ClientEvents["onServerRequest"] = async () => ({}),
  args = [FAULT_SERVER, "--name", "faults"],
): Promise<{ client: UpstreamClient; seen: Seen }> {
  const seen: Seen = { requests: [], notifications: [], listChanges: [], closed: 0, stderr: [] };
  const transport = createSdkTransport(
    { type: "stdio", command: NODE, args, env: {}, cwd: undefined },
    { onStderr: (line) => seen.stderr.push(line) },
  );
  const events: ClientEvents = {
    onServerRequest: async (request, signal) => {
      seen.requests.push(request);
      return answer(request, signal);
    },
    onNotification: (n) => seen.notifications.push(n),
    onListChanged: (kind) => seen.listChanges.push(kind),
    onClose: () => seen.closed++,
    onError: () => {},
  };
  client = await connectLegacy(transport, events, { name: "test", version: "1" }, TIMEOUT);
  return { client, seen };
}

const call = (c: UpstreamClient, name: string, args: Record<string, unknown> = {}, options = {}) =>
  c.request("tools/call", { name, arguments: args }, { timeout: TIMEOUT, ...options });

async function stats(c: UpstreamClient): Promise<{ cancelled: unknown[] }> {
  return JSON.parse(textOf(await call(c, "stats")));
}

describe("2025-11-25 connection over stdio", () => {
  it("negotiates with initialize and forwards results as they are", async () => {
    const { client } = await connect();
    expect(client.era).toBe("2025-11-25");
    expect(client.protocolVersion).toBe("2025-11-25");
    expect(client.serverInfo?.name).toBe("faults");
    expect(client.capabilities?.tools).toBeDefined();
    const result = await call(client, "structured", { n: 21 });
    expect(result.structuredContent).toEqual({ n: 21, doubled: 42 });
    expect(client.pending()).toBe(0);
  });

  it("delivers every progress update before the result, even those read with it", async () => {
    const { client } = await connect();
    const updates: unknown[] = [];
    const result = await call(
      client,
      "progress",
      { steps: 3, intervalMs: 0 },
      { onprogress: (p: unknown) => updates.push(p) },
    );
    expect(textOf(result)).toBe("done");
    expect(updates).toEqual([1, 2, 3].map((step) => ({ progress: step, total: 3, message: `step ${step}` })));
  });

  it("times out with RequestTimeout and cancels the request at the upstream", async () => {
    const { client } = await connect();
    const err = await call(client, "hang", {}, { timeout: 200 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32001);
    expect(requestFailure(err, "faults").error.code).toBe(ErrorCode.UpstreamTimeout);
    await eventually(async () => expect((await stats(client)).cancelled).toHaveLength(1));
    expect(client.pending()).toBe(0);
  });

  it("cancels at the upstream when the caller aborts, and fails with the caller's reason", async () => {
    const { client } = await connect();
    const controller = new AbortController();
    const pending = call(client, "hang", {}, { signal: controller.signal });
    await eventually(async () => expect(client.pending()).toBe(1));
    const reason = new GatewayError(ErrorCode.Cancelled, "the client cancelled");
    controller.abort(reason);
    const err = await pending.catch((e: unknown) => e);
    expect(requestFailure(err, "faults", controller.signal).error).toBe(reason);
    await eventually(async () => expect((await stats(client)).cancelled).toHaveLength(1));
  });

  it("answers the upstream's requests through onServerRequest, errors included", async () => {
    const { client, seen } = await connect(async (request) => {
      if (request.method === "elicitation/create") return { action: "accept", content: { answer: "42" } };
      throw new McpError(-32601, "no sampling here", { why: "test" });
    });
    const elicited = await call(client, "elicit", { message: "the answer?" });
    expect(JSON.parse(textOf(elicited))).toEqual({ action: "accept", content: { answer: "42" } });
    expect(seen.requests[0]).toMatchObject({
      method: "elicitation/create",
      params: { message: "the answer?" },
    });
    // The fault server rethrows the McpError it got back (code and message as we answered, one "MCP error"
    // prefix from its SDK); its tool call fails with that, and our McpError adds the outer prefix.
    const err = await call(client, "sample", { prompt: "hi" }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).message).toBe("MCP error -32601: MCP error -32601: no sampling here");
  });

  it("passes logging notifications on and skips a line that is not JSON-RPC", async () => {
    const { client, seen } = await connect();
    await call(client, "log", { message: "hello" });
    await eventually(async () =>
      expect(seen.notifications).toContainEqual(expect.objectContaining({ method: "notifications/message" })),
    );
    expect(textOf(await call(client, "garbage"))).toBe("ok");
    expect(textOf(await call(client, "echo", { text: "still here" }))).toBe("still here");
  });

  it("refuses a message that cannot be serialized without touching the connection", async () => {
    const { client } = await connect();
    let deep: Record<string, unknown> = {};
    for (let i = 0; i < 100_000; i++) deep = { d: deep };
    const err = await call(client, "echo", { text: "x", deep }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsendableMessageError);
    expect(client.pending()).toBe(0);
    expect(textOf(await call(client, "echo", { text: "fine" }))).toBe("fine");
  });

  it("fails calls in flight with ConnectionClosed when the process dies, and reports the close", async () => {
    const { client, seen } = await connect();
    const hanging = call(client, "hang");
    const err = await call(client, "crash").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(McpError);
    expect((err as McpError).code).toBe(-32000);
    await expect(hanging).rejects.toMatchObject({ code: -32000 });
    expect(seen.closed).toBe(1);
    expect(client.pending()).toBe(0);
    await expect(call(client, "echo", { text: "x" })).rejects.toThrow("Not connected");
  });

  it("gives up on an unanswered initialize without cancelling it", async () => {
    // The MCP lifecycle forbids cancelling `initialize`. This server never answers; at the end of its input it
    // prints every method it received.
    const server = `
      const seen = [];
      require("node:readline").createInterface({ input: process.stdin })
        .on("line", (line) => seen.push(JSON.parse(line).method))
        .on("close", () => { process.stderr.write("seen " + JSON.stringify(seen) + "\\n"); process.exit(0); });
    `;
    const stderr: string[] = [];
    let printed!: (line: string) => void;
    const seenLine = new Promise<string>((resolve) => {
      printed = resolve;
    });
    const transport = createSdkTransport(
      { type: "stdio", command: NODE, args: ["-e", server], env: {}, cwd: undefined },
      {
        onStderr: (line) => {
          stderr.push(line);
          if (line.startsWith("seen ")) printed(line);
        },
      },
    );
    const events: ClientEvents = {
      onServerRequest: async () => ({}),
      onNotification: () => {},
      onListChanged: () => {},
      onClose: () => {},
      onError: () => {},
    };
    // Any timeout does: the server never answers.
    await expect(connectLegacy(transport, events, { name: "test", version: "1" }, 200)).rejects.toThrow(
      "Request timed out",
    );
    expect(JSON.parse((await seenLine).slice("seen ".length))).toEqual(["initialize"]);
  });

  it("stops answering a request the upstream cancelled", async () => {
    // A server written by hand: on `tools/call` "ask" it asks for sampling and cancels that at once; on
    // "answers" it reports the ids of the answers it has received.
    const server = `
      const send = (m) => process.stdout.write(JSON.stringify(m) + "\\n");
      const answered = [];
      require("node:readline").createInterface({ input: process.stdin }).on("line", (line) => {
        const m = JSON.parse(line);
        if (m.method === "initialize") {
          send({ jsonrpc: "2.0", id: m.id, result: { protocolVersion: "2025-11-25", capabilities: { tools: {} },
            serverInfo: { name: "by-hand", version: "1" } } });
        } else if (m.method === "tools/call" && m.params.name === "ask") {
          send({ jsonrpc: "2.0", id: "s1", method: "sampling/createMessage", params: { messages: [], maxTokens: 1 } });
          send({ jsonrpc: "2.0", method: "notifications/cancelled", params: { requestId: "s1", reason: "changed my mind" } });
          send({ jsonrpc: "2.0", id: m.id, result: { content: [] } });
        } else if (m.method === "tools/call") {
          send({ jsonrpc: "2.0", id: m.id, result: { content: [{ type: "text", text: JSON.stringify(answered) }] } });
        } else if (m.method === undefined) {
          answered.push(m.id);
        }
      });
    `;
    let aborted: unknown;
    let handled!: () => void;
    const done = new Promise<void>((resolve) => {
      handled = resolve;
    });
    const { client, seen } = await connect(
      (_request, signal) =>
        new Promise((resolve) =>
          signal.addEventListener("abort", () => {
            aborted = signal.reason;
            resolve({ role: "assistant", content: { type: "text", text: "too late" }, model: "m" });
            setImmediate(handled);
          }),
        ),
      ["-e", server],
    );
    await call(client, "ask");
    await done;
    expect(seen.requests).toEqual([
      { method: "sampling/createMessage", params: { messages: [], maxTokens: 1 } },
    ]);
    expect(aborted).toBe("changed my mind");
    // Anything sent for "s1" would have been written before this call.
    expect(JSON.parse(textOf(await call(client, "answers")))).toEqual([]);
  });
});
