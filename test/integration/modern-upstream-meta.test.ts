/**
 * What a 2026-07-28 request's `_meta` carries upstream: the envelope (protocol version, client info and
 * capabilities, log level) describes the client's hop to the gateway and stays there; everything else (trace
 * context, extension keys) goes on, as with a 2025-11-25 session's call.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTracedServer, type TracedServer } from "../fixtures/traced-server.ts";
import { eventually, type InProcessGateway, startGateway } from "../helpers/gateway.ts";
import { BASE_HEADERS, rawPost } from "../helpers/raw-mcp.ts";

const VERSION = "2026-07-28";
const TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

let upstream: TracedServer;
let gw: InProcessGateway;

beforeAll(async () => {
  upstream = await startTracedServer();
  gw = await startGateway({ mcpServers: { traced: { type: "http", url: upstream.url } } });
  await eventually(() => gw.gateway.catalog.tool("traced__echo"));
});

afterAll(async () => {
  await gw?.stop();
  await upstream?.close();
});

function call(id: number, meta: Record<string, unknown>) {
  return rawPost(
    gw.url,
    JSON.stringify({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name: "traced__echo", arguments: {}, _meta: meta },
    }),
    {
      ...BASE_HEADERS,
      "mcp-protocol-version": VERSION,
      "mcp-method": "tools/call",
      "mcp-name": "traced__echo",
    },
  );
}

function envelopeKeys(meta: Record<string, unknown> | undefined): string[] {
  return Object.keys(meta ?? {}).filter((key) => key.startsWith("io.modelcontextprotocol/"));
}

describe("a 2026-07-28 call's _meta upstream", () => {
  it("leaves the envelope at the gateway and forwards the rest", async () => {
    const before = upstream.calls.length;
    const reply = await call(1, {
      "io.modelcontextprotocol/protocolVersion": VERSION,
      "io.modelcontextprotocol/clientInfo": { name: "meta-test", version: "1.0.0" },
      "io.modelcontextprotocol/clientCapabilities": { elicitation: {} },
      "io.modelcontextprotocol/logLevel": "debug",
      traceparent: TRACEPARENT,
      "example.com/tag": "kept",
    });
    expect(reply.status).toBe(200);
    expect(reply.messages[0]).toMatchObject({ id: 1, result: { resultType: "complete" } });
    const seen = upstream.calls.slice(before);
    expect(seen).toHaveLength(1);
    const meta = seen[0]?.meta;
    expect(envelopeKeys(meta)).toEqual([]);
    expect(meta).toMatchObject({ "example.com/tag": "kept" });
    // The trace continues upstream (the client's trace id, whatever span the gateway puts in between).
    expect(String(meta?.traceparent)).toContain("0af7651916cd43dd8448eb211c80319c");
  });

  it("sends an envelope-only _meta as a 2025 session's call would (no envelope keys)", async () => {
    const before = upstream.calls.length;
    const reply = await call(2, {
      "io.modelcontextprotocol/protocolVersion": VERSION,
      "io.modelcontextprotocol/clientCapabilities": {},
    });
    expect(reply.messages[0]).toMatchObject({ id: 2, result: { resultType: "complete" } });
    const seen = upstream.calls.slice(before);
    expect(seen).toHaveLength(1);
    expect(envelopeKeys(seen[0]?.meta)).toEqual([]);
  });
});
