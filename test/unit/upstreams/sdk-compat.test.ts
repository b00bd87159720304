/**
 * The workarounds in src/upstreams/sdk-compat.ts reach into SDK internals. These tests fail when the installed
 * SDK is not the version they were checked against, or when an internal they use is gone: re-check each
 * workaround (is the bug fixed upstream? did the field move?) and then move the pin.
 */
import { readFileSync } from "node:fs";
import { Client as ClientV2 } from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { InMemoryTransport } from "@modelcontextprotocol/sdk/inMemory.js";
import { Server } from "@modelcontextprotocol/sdk/server/index.js";
import type { JSONRPCMessage } from "@modelcontextprotocol/sdk/types.js";
import { ResultSchema } from "@modelcontextprotocol/sdk/types.js";
import { describe, expect, it } from "vitest";
import {
  deliverResponsesLast,
  forgetRequest,
  nextRequestId,
  pendingRequestCount,
  SDK_V1_VERSION,
  SDK_V2_CLIENT_VERSION,
} from "../../../src/upstreams/sdk-compat.ts";

const ROOT = new URL("../../../", import.meta.url);
const versionOf = (name: string) =>
  (
    JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, ROOT), "utf8")) as {
      version: string;
    }
  ).version;

describe("sdk-compat", () => {
  it("is pinned to the installed SDK versions", () => {
    expect(versionOf("@modelcontextprotocol/sdk")).toBe(SDK_V1_VERSION);
    expect(versionOf("@modelcontextprotocol/client")).toBe(SDK_V2_CLIENT_VERSION);
  });

  it("reads and repairs the v1 Protocol's request bookkeeping", async () => {
    const server = new Server({ name: "s", version: "1" }, { capabilities: {} });
    // A request that never gets an answer keeps its handlers, as one whose send failed would.
    server.fallbackRequestHandler = () => new Promise(() => {});
    const client = new Client({ name: "c", version: "1" });
    const [a, b] = InMemoryTransport.createLinkedPair();
    await server.connect(a);
    await client.connect(b);
    const id = nextRequestId(client);
    expect(typeof id).toBe("number");
    const pending = client.request({ method: "x/never" }, ResultSchema, { timeout: 60_000 });
    pending.catch(() => {});
    expect(nextRequestId(client)).toBe(id + 1);
    expect(pendingRequestCount(client)).toBe(1);
    forgetRequest(client, id);
    expect(pendingRequestCount(client)).toBe(0);
    await client.close();
    await server.close();
  });

  it("v1 SDK still keeps the handlers of a request whose send failed (why forgetRequest exists)", async () => {
    const transport = echoingTransport();
    const client = new Client({ name: "c", version: "1" });
    await client.connect(transport);
    transport.send = async () => {
      throw new Error("HTTP 503");
    };
    await expect(client.request({ method: "x/work" }, ResultSchema)).rejects.toThrow("HTTP 503");
    // If this fails, the SDK cleans up after a failed send itself: delete forgetRequest and this test.
    expect(pendingRequestCount(client)).toBe(1);
    await client.close();
  });

  it.each([
    ["v1", () => new Client({ name: "c", version: "1" })],
    ["v2", () => new ClientV2({ name: "c", version: "1" })],
  ] as const)(
    "%s SDK still drops progress read in the same tick as its response (why deliverResponsesLast exists)",
    async (_, make) => {
      const seen = async (fix: boolean) => {
        // The two SDKs' clients share this much shape; their types differ in detail.
        const client = make() as unknown as {
          connect(transport: unknown, options: unknown): Promise<void>;
          request(request: unknown, schema: unknown, options: unknown): Promise<unknown>;
          close(): Promise<void>;
        };
        const transport = echoingTransport();
        await client.connect(
          (fix ? deliverResponsesLast(transport) : transport) as never,
          { timeout: 5_000 } as never,
        );
        let updates = 0;
        await client.request(
          { method: "x/work", params: {} },
          ResultSchema as never,
          {
            onprogress: () => {
              updates++;
            },
          } as never,
        );
        await client.close();
        return updates;
      };
      // If the first assertion fails, the SDK fixed the ordering: delete deliverResponsesLast and this test.
      expect(await seen(false)).toBe(0);
      expect(await seen(true)).toBe(1);
    },
  );

  it("delivers a response after the notifications read before it", async () => {
    const order: string[] = [];
    const transport = {
      onmessage: undefined as ((m: { method?: string }, extra?: unknown) => void) | undefined,
      start: async () => {},
    };
    transport.onmessage = (m) => order.push(m.method ?? "response");
    deliverResponsesLast(transport as never);
    await transport.start();
    transport.onmessage?.({ id: 1, result: {} } as never);
    transport.onmessage?.({ method: "notifications/progress" });
    await Promise.resolve();
    expect(order).toEqual(["notifications/progress", "response"]);
  });
});

/**
 * A transport whose peer answers each request at once with one progress update and then the result, both
 * delivered in the same tick (as when one stdio chunk holds both). It answers `initialize` like a 2025 server.
 */
function echoingTransport() {
  const transport = {
    onmessage: undefined as ((message: JSONRPCMessage) => void) | undefined,
    onclose: undefined as (() => void) | undefined,
    onerror: undefined as ((error: Error) => void) | undefined,
    async start() {},
    async close() {
      transport.onclose?.();
    },
    async send(message: JSONRPCMessage) {
      if (!("id" in message) || !("method" in message)) return;
      const deliver = (m: unknown) => transport.onmessage?.(m as JSONRPCMessage);
      if (message.method === "initialize") {
        const result = {
          protocolVersion: "2025-11-25",
          capabilities: {},
          serverInfo: { name: "s", version: "1" },
        };
        queueMicrotask(() => deliver({ jsonrpc: "2.0", id: message.id, result }));
        return;
      }
      const token = (message.params as { _meta?: { progressToken?: unknown } } | undefined)?._meta
        ?.progressToken;
      queueMicrotask(() => {
        deliver({
          jsonrpc: "2.0",
          method: "notifications/progress",
          params: { progressToken: token, progress: 1 },
        });
        deliver({ jsonrpc: "2.0", id: message.id, result: {} });
      });
    },
  };
  return transport;
}
