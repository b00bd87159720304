import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";
import { StdioClientTransport } from "@modelcontextprotocol/sdk/client/stdio.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { WebSocketClientTransport } from "@modelcontextprotocol/sdk/client/websocket.js";
import type { Transport } from "@modelcontextprotocol/sdk/shared/transport.js";
import type { CallToolResult } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it } from "vitest";
import { WebSocket } from "ws";
import { type FaultStats, startFaultServer } from "../fixtures/fault-server.ts";
import { FIXTURE_TRANSPORTS, type FixtureTransport } from "../fixtures/serve.ts";

const FAULT_SERVER = new URL("../fixtures/fault-server.ts", import.meta.url).pathname;
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.allSettled(cleanups.splice(0).map((cleanup) => cleanup()));
});

/** A connected client to a fault server with 5 extra tools and pages of 7. */
async function connect(transport: FixtureTransport): Promise<Client> {
  let clientTransport: Transport;
  if (transport === "stdio") {
    clientTransport = new StdioClientTransport({
      command: process.execPath,
      args: [FAULT_SERVER, "--extra-tools", "5", "--page-size", "7"],
    });
  } else {
    const server = await startFaultServer({ transport, extraTools: 5, pageSize: 7 });
    cleanups.push(() => server.close());
    const url = new URL(server.url);
    clientTransport =
      transport === "http"
        ? new StreamableHTTPClientTransport(url)
        : transport === "sse"
          ? new SSEClientTransport(url)
          : new WebSocketClientTransport(url);
  }
  const client = new Client({ name: "fixtures-test", version: "1.0.0" });
  await client.connect(clientTransport);
  cleanups.unshift(() => client.close());
  return client;
}

function textOf(result: unknown): string {
  const [first] = (result as CallToolResult).content;
  return first?.type === "text" ? first.text : "";
}

describe.each(FIXTURE_TRANSPORTS)("fault server over %s", (transport) => {
  it("pages tools/list, echoes, and counts overlapping calls per key", async () => {
    const client = await connect(transport);

    const names: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await client.listTools(cursor === undefined ? {} : { cursor });
      expect(page.tools.length).toBeLessThanOrEqual(7);
      names.push(...page.tools.map((t) => t.name));
      cursor = page.nextCursor;
      pages++;
    } while (cursor !== undefined && pages < 10);
    expect(pages).toBeGreaterThan(1);
    expect(new Set(names).size).toBe(names.length);
    expect(names).toEqual(expect.arrayContaining(["echo", "work", "fail_idempotent", "t0", "t4"]));

    expect(textOf(await client.callTool({ name: "echo", arguments: { text: "hi" } }))).toBe("hi");

    // Both calls hold until released, so they surely overlap.
    const work = () =>
      client.callTool({ name: "work", arguments: { key: "file-a", ms: 0, hold: "overlap" } });
    const stats = async () =>
      JSON.parse(textOf(await client.callTool({ name: "stats", arguments: {} }))) as FaultStats;
    const both = Promise.all([work(), work()]);
    for (let i = 0; (await stats()).inFlight < 2; i++) {
      if (i > 3_000) throw new Error("the two calls never overlapped");
      await new Promise((r) => setTimeout(r, 10));
    }
    await client.callTool({ name: "release", arguments: { hold: "overlap" } });
    await both;
    const final = await stats();
    expect(final.peak).toBe(2);
    expect(final.overlaps["file-a"]).toBe(1);
    expect(final.calls).toEqual({ echo: 1, work: 2 });
  });
});

describe("fault server failures", () => {
  it("fails the first calls per key, then succeeds", async () => {
    const client = await connect("http");
    await expect(
      client.callTool({ name: "fail_idempotent", arguments: { times: 1, key: "k" } }),
    ).rejects.toThrow(/injected failure 1/);
    const toolError = await client.callTool({ name: "fail", arguments: { times: 1, mode: "toolError" } });
    expect(toolError.isError).toBe(true);
    const ok = await client.callTool({ name: "fail_idempotent", arguments: { times: 1, key: "k" } });
    expect(textOf(ok)).toBe("ok after 1 failures");
  });

  it("records a cancelled hang by request id", async () => {
    const server = await startFaultServer({ transport: "http" });
    cleanups.push(() => server.close());
    const client = new Client({ name: "fixtures-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(server.url)));
    cleanups.unshift(() => client.close());
    const controller = new AbortController();
    const call = client.callTool({ name: "hang", arguments: {} }, undefined, { signal: controller.signal });
    await expect.poll(() => server.stats().inFlight).toBe(1);
    controller.abort();
    await expect(call).rejects.toThrow();
    await expect.poll(() => server.stats().cancelled.length).toBe(1);
  });
});

describe("WebSocketServerTransport", () => {
  it("selects the mcp subprotocol and answers malformed frames without dropping the session", async () => {
    const server = await startFaultServer({ transport: "ws" });
    cleanups.push(() => server.close());
    const ws = new WebSocket(server.url, "mcp");
    cleanups.unshift(async () => ws.close());
    const frames: unknown[] = [];
    ws.on("message", (data) => frames.push(JSON.parse(String(data))));
    await new Promise((resolve, reject) => ws.once("open", resolve).once("error", reject));
    expect(ws.protocol).toBe("mcp");

    ws.send("{not json");
    ws.send(Buffer.from([1, 2, 3]), { binary: true });
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 7, method: 42 }));
    ws.send(JSON.stringify({ jsonrpc: "2.0", id: 8, method: "ping" }));

    await expect.poll(() => frames.length).toBe(4);
    expect(frames).toEqual([
      { jsonrpc: "2.0", error: expect.objectContaining({ code: -32700 }) },
      { jsonrpc: "2.0", error: expect.objectContaining({ code: -32600 }) },
      { jsonrpc: "2.0", id: 7, error: expect.objectContaining({ code: -32600 }) },
      { jsonrpc: "2.0", id: 8, result: {} },
    ]);
  });
});
