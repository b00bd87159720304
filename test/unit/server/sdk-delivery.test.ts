import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import * as types from "@modelcontextprotocol/sdk/types.js";
import { afterEach, describe, expect, it, vi } from "vitest";
import { type DirectRequestHandler, deliverDirectly } from "../../../src/server/sdk-delivery.ts";

describe("deliverDirectly: the SDK server gets requests, notifications and responses without its zod guards", () => {
  const closers: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const close of closers.splice(0)) await close();
  });

  it("serves requests, sees notifications and gets answers to its own requests", async () => {
    const server = new Server({ name: "s", version: "1" }, { capabilities: { tools: {} } });
    server.setRequestHandler(types.ListToolsRequestSchema, () => ({ tools: [] }));
    let initialized = false;
    server.oninitialized = () => {
      initialized = true;
    };
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    const route = vi.spyOn(server as unknown as { _onrequest: (...a: unknown[]) => void }, "_onrequest");
    await server.connect(deliverDirectly(serverSide, server as never));
    const client = new Client({ name: "c", version: "1" }, { capabilities: { roots: {} } });
    client.setRequestHandler(types.ListRootsRequestSchema, () => ({ roots: [{ uri: "file:///r" }] }));
    await client.connect(clientSide);
    closers.push(() => client.close());
    expect(await client.listTools()).toEqual({ tools: [] });
    await vi.waitFor(() => expect(initialized).toBe(true));
    // A server→client request: its answer comes back as a response message.
    expect(await server.listRoots()).toEqual({ roots: [{ uri: "file:///r" }] });
    expect(route).toHaveBeenCalled();
  });

  it("keeps the SDK's own routing when the Protocol lacks the methods it calls", () => {
    const [, serverSide] = InMemoryTransport.createLinkedPair();
    const start = serverSide.start;
    expect(deliverDirectly(serverSide, {} as never).start).toBe(start);
  });

  it("routes by shape alone: the SDK's strict parse is not run again", () => {
    const server = new Server({ name: "s", version: "1" }, { capabilities: {} });
    const [, serverSide] = InMemoryTransport.createLinkedPair();
    const internals = server as unknown as { _onrequest: (...a: unknown[]) => void };
    const onrequest = vi.spyOn(internals, "_onrequest").mockImplementation(() => {});
    void server.connect(deliverDirectly(serverSide, server as never));
    // An extra envelope key fails the SDK's strict schema (its own routing would report an unknown message).
    const request = { jsonrpc: "2.0" as const, id: 1, method: "ping", extra: true };
    serverSide.onmessage?.(request);
    expect(onrequest).toHaveBeenCalledWith(request, undefined);
  });

  it("hands requests without an SDK handler to `direct`, where notifications/cancelled aborts them", async () => {
    const server = new Server({ name: "s", version: "1" }, { capabilities: { tools: {} } });
    const seen: string[] = [];
    let cancelled: unknown;
    const direct: DirectRequestHandler = (request, _extra, controllers) => {
      seen.push(request.method);
      if (request.method !== "tools/call") return false; // left to the SDK (its fallback handler)
      const controller = new AbortController();
      controllers.set(request.id, controller);
      controller.signal.addEventListener("abort", () => {
        cancelled = controller.signal.reason;
      });
      return true; // never answered: only the cancellation ends it
    };
    server.fallbackRequestHandler = async () => ({ tools: [] });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(deliverDirectly(serverSide, server as never, direct));
    const client = new Client({ name: "c", version: "1" });
    await client.connect(clientSide);
    closers.push(() => client.close());
    await client.ping();
    expect(await client.listTools()).toEqual({ tools: [] });
    const abort = new AbortController();
    const call = client.callTool({ name: "t", arguments: {} }, undefined, { signal: abort.signal });
    await vi.waitFor(() => expect(seen).toContain("tools/call"));
    abort.abort("the user stopped it");
    await expect(call).rejects.toThrow();
    await vi.waitFor(() => expect(cancelled).toBe("the user stopped it"));
    // initialize and ping have handlers of the SDK's own: they never reach `direct`.
    expect(seen).toEqual(["tools/list", "tools/call"]);
  });
});
