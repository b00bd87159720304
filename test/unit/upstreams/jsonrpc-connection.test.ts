/**
 * The JSON-RPC engine's timers: a request with a timeout of its own (discovery, health checks) fails with
 * RequestTimeout and tells the peer; a proxied call, which the timeout policy bounds, arms no timer and is
 * still cancelled upstream when its signal aborts; and what calls in flight fail with when the connection
 * goes. Over the SDK's in-memory transport pair, with fake timers.
 */
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { ErrorCode, type JSONRPCMessage, McpError } from "@modelcontextprotocol/sdk/types.js";
import { afterEach, beforeEach, expect, it, vi } from "vitest";
import { JsonRpcConnection, NO_TIMEOUT } from "../../../src/upstreams/jsonrpc-connection.ts";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

async function connected() {
  const [ours, peer] = InMemoryTransport.createLinkedPair();
  const received: JSONRPCMessage[] = [];
  peer.onmessage = (message) => received.push(message);
  await peer.start();
  const connection = new JsonRpcConnection(ours, {
    onRequest: async () => ({}),
    onNotification() {},
    onClose() {},
    onError() {},
  });
  await connection.start();
  const cancellations = () =>
    received
      .filter((m) => "method" in m && m.method === "notifications/cancelled")
      .map((m) => (m as { params?: unknown }).params);
  return { connection, peer, received, cancellations };
}

it("a request with a timeout of its own fails with RequestTimeout and cancels it upstream", async () => {
  const { connection, cancellations } = await connected();
  const timers = vi.getTimerCount();
  const answer = connection.request("tools/list", undefined, { timeout: 1_000 });
  const failed = expect(answer).rejects.toMatchObject({ code: ErrorCode.RequestTimeout });
  expect(vi.getTimerCount()).toBe(timers + 1);
  vi.advanceTimersByTime(999);
  expect(cancellations()).toEqual([]);
  vi.advanceTimersByTime(1);
  await failed;
  expect(cancellations()).toEqual([expect.objectContaining({ requestId: 0 })]);
  expect(connection.pending()).toBe(0);
});

it("a call without a timeout of its own arms no timer, and its signal's abort still cancels it upstream", async () => {
  const { connection, cancellations } = await connected();
  const timers = vi.getTimerCount();
  const controller = new AbortController();
  const reason = new McpError(ErrorCode.RequestTimeout, "attempt timeout");
  const answer = connection.request(
    "tools/call",
    { name: "slow", arguments: {} },
    { signal: controller.signal, timeout: NO_TIMEOUT },
  );
  expect(vi.getTimerCount()).toBe(timers);
  controller.abort(reason);
  await expect(answer).rejects.toBe(reason);
  expect(cancellations()).toEqual([expect.objectContaining({ requestId: 0 })]);
  expect(connection.pending()).toBe(0);
});

it("an answer settles the call and clears its timer", async () => {
  const { connection, peer, received } = await connected();
  const timers = vi.getTimerCount();
  const answer = connection.request("tools/list", undefined, { timeout: 1_000 });
  const sent = received[0] as { id: number };
  await peer.send({ jsonrpc: "2.0", id: sent.id, result: { tools: [] } });
  await expect(answer).resolves.toEqual({ tools: [] });
  expect(vi.getTimerCount()).toBe(timers);
});

it("calls in flight fail with the reason their owner dropped the connection for, and bare when the peer closed", async () => {
  const dropped = await connected();
  const call = dropped.connection.request("tools/call", { name: "x" }, { timeout: NO_TIMEOUT });
  const failed = expect(call).rejects.toMatchObject({
    code: ErrorCode.ConnectionClosed,
    message: expect.stringMatching(/Connection closed: the event stream broke: too long$/),
  });
  await dropped.connection.close("the event stream broke: too long");
  await failed;

  // The peer closes first; a close(reason) from the owner's handler on that close says nothing more.
  const [ours, peer] = InMemoryTransport.createLinkedPair();
  await peer.start();
  const connection: JsonRpcConnection = new JsonRpcConnection(ours, {
    onRequest: async () => ({}),
    onNotification() {},
    onClose: () => void connection.close("the process exited; its last stderr: secret"),
    onError() {},
  });
  await connection.start();
  const orphan = connection.request("tools/call", { name: "x" }, { timeout: NO_TIMEOUT });
  const bare = expect(orphan).rejects.toMatchObject({
    code: ErrorCode.ConnectionClosed,
    message: expect.stringMatching(/Connection closed$/),
  });
  await peer.close();
  await bare;
});
